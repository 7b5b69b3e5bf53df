"""The default workflow templates (txt2img SD1.5-style, SDXL, img2img, video frames) and the
legacy models mapped onto them (``f222`` for images, ``model3`` for video)."""
from __future__ import annotations

from aimg_app.plugin_api import (
    GenerationModel,
    SamplePrompt,
    TemplateFile,
    TemplateParameter,
    WorkflowTemplate,
    hookimpl,
)

SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_sde", "ddim", "uni_pc", "lms")
SCHEDULERS = ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform")
SD15_CHECKPOINTS = ("f222.safetensors", "v1-5-pruned-emaonly.safetensors", "realistic-vision-v5.safetensors")
SDXL_CHECKPOINTS = ("sd_xl_base_1.0.safetensors", "juggernaut-xl-v9.safetensors")
SDXL_LORAS = ("detail-tweaker-xl.safetensors", "film-grain-xl.safetensors")
SEED_MAX = str(2**32 - 1)


def _prompt_parameters() -> list[TemplateParameter]:
    return [
        TemplateParameter("Positive Prompt", "string", "{{POSITIVE_PROMPT}}", "What to generate.", max="4000",
                          option_name="prompt"),
        TemplateParameter("Negative Prompt", "string", "{{NEGATIVE_PROMPT}}", "What to avoid.", is_optional=True,
                          max="4000", option_name="negprompt"),
    ]


def _sampling_parameters(steps_max: str = "50", default_steps: str = "20") -> list[TemplateParameter]:
    return [
        TemplateParameter("Seed", "number", "{{SEED}}", "The noise seed; random when empty.", is_optional=True,
                          min="0", max=SEED_MAX, increment="1", option_name="seed", extra_data={"randomIfEmpty": True}),
        TemplateParameter("Steps", "number", "{{STEPS}}", "Sampling steps.", default_value=default_steps, min="1",
                          max=steps_max, increment="1", option_name="steps"),
        TemplateParameter("CFG Scale", "number", "{{CFG_SCALE}}", "How closely to follow the prompt.",
                          default_value="7", min="1", max="12", option_name="cfgscale"),
        TemplateParameter("Sampler", "dropdown", "{{SAMPLER}}", "The sampler.", default_value="dpmpp_2m",
                          dropdown_items=SAMPLERS, is_always_visible=False),
        TemplateParameter("Scheduler", "dropdown", "{{SCHEDULER}}", "The noise schedule.", default_value="karras",
                          dropdown_items=SCHEDULERS, is_always_visible=False),
    ]


def _size_parameters(default: str, low: str, high: str) -> list[TemplateParameter]:
    return [
        TemplateParameter("Width", "number", "{{WIDTH}}", "Width in pixels.", default_value=default, min=low, max=high,
                          increment="64", option_name="width"),
        TemplateParameter("Height", "number", "{{HEIGHT}}", "Height in pixels.", default_value=default, min=low,
                          max=high, increment="64", option_name="height"),
    ]


def _txt2img_graph(checkpoint_marker: str = "{{MODEL}}", with_lora: bool = False) -> dict:
    model_link, clip_link = ["4", 0], ["4", 1]
    graph = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint_marker}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{POSITIVE_PROMPT}}", "clip": clip_link}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{NEGATIVE_PROMPT}}", "clip": clip_link}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": "{{WIDTH}}", "height": "{{HEIGHT}}", "batch_size": "{{BATCH_SIZE}}"}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": model_link, "seed": "{{SEED}}", "steps": "{{STEPS}}", "cfg": "{{CFG_SCALE}}",
            "sampler_name": "{{SAMPLER}}", "scheduler": "{{SCHEDULER}}", "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0], "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "aimg/txt2img"}},
    }
    if with_lora:
        graph["10"] = {"class_type": "LoraLoader", "inputs": {
            "model": ["4", 0], "clip": ["4", 1], "lora_name": "{{LORA_1}}",
            "strength_model": "{{LORA_1_STRENGTH}}", "strength_clip": "{{LORA_1_STRENGTH}}"}}
        for node in ("6", "7"):
            graph[node]["inputs"]["clip"] = ["10", 1]
        graph["3"]["inputs"]["model"] = ["10", 0]
    return graph


class Txt2ImgSD15(WorkflowTemplate):
    identifier = "txt2img-sd15"
    label = "Text to image (SD 1.5)"
    description = "A Stable Diffusion 1.5-style checkpoint: prompt in, images out."
    main_output_node = "9"
    max_batch_size = 8

    def graph(self):
        return _txt2img_graph()

    def parameters(self):
        return [
            *_prompt_parameters(),
            TemplateParameter("Model", "dropdown", "{{MODEL}}", "The checkpoint.", default_value=SD15_CHECKPOINTS[0],
                              dropdown_items=SD15_CHECKPOINTS, option_name="modelName"),
            *_sampling_parameters(),
            *_size_parameters("512", "256", "1024"),
            TemplateParameter("Batch Size", "number", "{{BATCH_SIZE}}", "Images per run.", default_value="1", min="1",
                              max=str(self.max_batch_size), increment="1", option_name="batchSize"),
        ]

    def files(self):
        return {"checkpoints": TemplateFile(SD15_CHECKPOINTS, "checkpoint")}


class Txt2ImgSDXL(WorkflowTemplate):
    identifier = "txt2img-sdxl"
    label = "Text to image (SDXL)"
    description = "An SDXL checkpoint with one optional LoRA."
    main_output_node = "9"
    max_batch_size = 4
    max_concurrent = (0, 2, 4)

    def graph(self):
        return _txt2img_graph(with_lora=True)

    def parameters(self):
        return [
            *_prompt_parameters(),
            TemplateParameter("Model", "dropdown", "{{MODEL}}", "The checkpoint.", default_value=SDXL_CHECKPOINTS[0],
                              dropdown_items=SDXL_CHECKPOINTS, option_name="modelName"),
            TemplateParameter("Lora 1", "filesGroup", "{{LORA_1}}", "A LoRA to apply.", default_value=SDXL_LORAS[0],
                              is_optional=True, file_group="loras", file_group_destination="models/loras",
                              option_name="lora"),
            TemplateParameter("Lora 1 Strength", "number", "{{LORA_1_STRENGTH}}", "The LoRA's strength (0 = off).",
                              default_value="0", min="-2", max="2", is_optional=True, option_name="lora_strength"),
            *_sampling_parameters(steps_max="60", default_steps="25"),
            *_size_parameters("1024", "512", "1536"),
            TemplateParameter("Batch Size", "number", "{{BATCH_SIZE}}", "Images per run.", default_value="1", min="1",
                              max=str(self.max_batch_size), increment="1", option_name="batchSize"),
        ]

    def files(self):
        return {"checkpoints": TemplateFile(SDXL_CHECKPOINTS, "checkpoint"), "loras": TemplateFile(SDXL_LORAS, "lora")}

    def file_groups(self):
        return {"loras": list(SDXL_LORAS)}


class Img2ImgSD15(WorkflowTemplate):
    identifier = "img2img-sd15"
    label = "Image to image (SD 1.5)"
    description = "Repaint an uploaded image following the prompt."
    main_output_node = "9"
    max_batch_size = 1

    def graph(self):
        graph = _txt2img_graph()
        del graph["5"]
        graph["11"] = {"class_type": "LoadImage", "inputs": {"image": "{{INPUT_IMAGE}}"}}
        graph["12"] = {"class_type": "ImageScale", "inputs": {"image": ["11", 0], "upscale_method": "bilinear",
                                                               "width": "{{WIDTH}}", "height": "{{HEIGHT}}",
                                                               "crop": "center"}}
        graph["13"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": ["4", 2]}}
        graph["3"]["inputs"].update(latent_image=["13", 0], denoise="{{DENOISE}}")
        graph["9"]["inputs"]["filename_prefix"] = "aimg/img2img"
        return graph

    def parameters(self):
        return [
            *_prompt_parameters(),
            TemplateParameter("Input Image", "file", "{{INPUT_IMAGE}}", "The image to start from (a file id).",
                              option_name="input"),
            TemplateParameter("Denoise", "number", "{{DENOISE}}", "How much to change (0-1).", default_value="0.6",
                              min="0", max="1"),
            TemplateParameter("Model", "dropdown", "{{MODEL}}", "The checkpoint.", default_value=SD15_CHECKPOINTS[0],
                              dropdown_items=SD15_CHECKPOINTS, option_name="modelName"),
            *_sampling_parameters(),
            *_size_parameters("512", "256", "1024"),
        ]


def _video_graph(from_image: bool) -> dict:
    graph = _txt2img_graph()
    graph["3"]["inputs"]["sampler_name"] = "euler"
    graph["3"]["inputs"]["scheduler"] = "normal"
    if from_image:
        del graph["5"]
        graph["11"] = {"class_type": "LoadImage", "inputs": {"image": "{{INPUT_IMAGE}}"}}
        graph["12"] = {"class_type": "ImageScale", "inputs": {"image": ["11", 0], "upscale_method": "bilinear",
                                                               "width": "{{WIDTH}}", "height": "{{HEIGHT}}",
                                                               "crop": "center"}}
        graph["13"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": ["4", 2]}}
        graph["14"] = {"class_type": "RepeatLatentBatch", "inputs": {"samples": ["13", 0], "amount": "{{FRAMES}}"}}
        graph["3"]["inputs"].update(latent_image=["14", 0], denoise=0.75)
    else:
        graph["5"]["inputs"]["batch_size"] = "{{FRAMES}}"
    graph["9"]["inputs"]["filename_prefix"] = "aimg/frames"
    graph["10"] = {"class_type": "SaveAnimatedWEBP", "inputs": {
        "images": ["8", 0], "filename_prefix": "aimg/video", "fps": "{{FPS}}", "lossless": False, "quality": 80,
        "method": "default"}}
    return graph


def _video_parameters(from_image: bool) -> list[TemplateParameter]:
    params = [
        *_prompt_parameters(),
        TemplateParameter("Model", "dropdown", "{{MODEL}}", "The checkpoint.", default_value=SD15_CHECKPOINTS[0],
                          dropdown_items=SD15_CHECKPOINTS, option_name="modelName"),
        TemplateParameter("Frames", "number", "{{FRAMES}}", "Frames in the video.", default_value="8", min="2",
                          max="48", increment="1"),
        TemplateParameter("FPS", "number", "{{FPS}}", "Frames per second.", default_value="8", min="1", max="30"),
        *[p for p in _sampling_parameters(steps_max="30", default_steps="15") if p.name not in ("Sampler", "Scheduler")],
        *_size_parameters("512", "256", "768"),
    ]
    if from_image:
        params.insert(2, TemplateParameter("Input Image", "file", "{{INPUT_IMAGE}}", "The first frame (a file id).",
                                           option_name="input"))
    return params


class VideoFrames(WorkflowTemplate):
    identifier = "video-frames"
    label = "Text to video (frames)"
    description = "A short animation: every frame as a PNG, and the video as animated WEBP."
    mtype = "video"
    media_type = "Video"
    main_output_node = "10"
    frames_output_node = "9"
    max_batch_size = 1
    max_concurrent = (0, 2, 4)

    def graph(self):
        return _video_graph(from_image=False)

    def parameters(self):
        return _video_parameters(from_image=False)


class ImageToVideoFrames(VideoFrames):
    identifier = "img2video-frames"
    label = "Image to video (frames)"
    description = "Animate an image; optional ControlNet presets keep its depth or pose."
    control_net_presets = ("depth", "openpose")

    def graph(self):
        return _video_graph(from_image=True)

    def parameters(self):
        return _video_parameters(from_image=True)

    def control_net_preset(self, graph, preset):
        graph["20"] = {"class_type": "ControlNetLoader",
                       "inputs": {"control_net_name": f"control_v11p_sd15_{preset}.safetensors"}}
        graph["21"] = {"class_type": "ControlNetApply", "inputs": {
            "conditioning": ["6", 0], "control_net": ["20", 0], "image": ["12", 0], "strength": 0.8}}
        graph["3"]["inputs"]["positive"] = ["21", 0]
        return graph


class F222(GenerationModel):
    identifier = "f222"
    label = "F222"
    description = "A general-purpose SD 1.5 model, good at people."
    workflow_template = "txt2img-sd15"
    checkpoint = "f222.safetensors"
    tier0_concurrent, tier1_concurrent, tier2_concurrent = 1, 3, 6
    negative_tokens = ("lowres", "bad anatomy")
    allowed_widths = (512, 576, 640, 704, 768)
    allowed_heights = (512, 576, 640, 704, 768)
    max_resolution = 768 * 640
    allowed_samplers = ("DPM++ 2M Karras", "Euler a", "Euler", "DDIM", "DPM++ SDE Karras")
    sample_prompts = (
        SamplePrompt("portrait of a woman in a red coat, soft window light, 85mm", "lowres, blurry"),
        SamplePrompt("a lighthouse on a cliff at sunset, dramatic clouds", "text, watermark"),
    )


class SDXL(GenerationModel):
    identifier = "sdxl"
    label = "SDXL"
    description = "SDXL base at 1024 pixels, for PRO users."
    workflow_template = "txt2img-sdxl"
    checkpoint = "sd_xl_base_1.0.safetensors"
    min_tier = 1
    registration_wall = True
    tier0_concurrent, tier1_concurrent, tier2_concurrent = 0, 2, 4
    default_steps = 25
    max_steps = 60
    allowed_widths = (768, 832, 896, 1024, 1152, 1216)
    allowed_heights = (768, 832, 896, 1024, 1152, 1216)
    max_resolution = 1024 * 1024
    default_resolution = (1024, 1024)
    allowed_samplers = ("DPM++ 2M Karras", "Euler a", "DPM++ 2M SDE Karras")
    sample_prompts = (SamplePrompt("an astronaut riding a horse on mars, cinematic", "cartoon"),)


class Model3(GenerationModel):
    identifier = "model3"
    label = "Model 3 (video)"
    description = "Short animations from a prompt, or from an image."
    media_type = "Video"
    workflow_template = "video-frames"
    input_template = "img2video-frames"
    checkpoint = "v1-5-pruned-emaonly.safetensors"
    registration_wall = True
    tier0_concurrent, tier1_concurrent, tier2_concurrent = 1, 2, 3
    max_steps = 30
    default_steps = 15
    allowed_widths = (384, 512)
    allowed_heights = (384, 512)
    allowed_samplers = ("Euler",)
    default_sampler = "Euler"
    sample_prompts = (SamplePrompt("waves rolling onto a beach, slow motion", "static"),)

    def template_values(self, request):
        values = super().template_values(request)
        values.pop("Sampler", None)
        values.pop("Scheduler", None)
        return values


@hookimpl
def register_workflow_templates():
    return [Txt2ImgSD15, Txt2ImgSDXL, Img2ImgSD15, VideoFrames, ImageToVideoFrames]


@hookimpl
def register_models():
    return [F222, SDXL, Model3]

"""The node classes the fake ComfyUI knows: one table, one entry per class.

Each ``NodeSpec`` lists the required inputs as ``name -> (type, options)`` (``MODEL_FILE``
and ``INPUT_FILE`` are combos over the installed model files and the uploaded images;
``COMBO`` over ``options["values"]``), what the node outputs (used to check links), and
whether it is an output node.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral",
            "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "ddim", "uni_pc"]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform"]
# What a fake server "has installed" unless told otherwise: the files the default templates name.
DEFAULT_MODEL_FILES = (
    "f222.safetensors", "v1-5-pruned-emaonly.safetensors", "realistic-vision-v5.safetensors",
    "sd_xl_base_1.0.safetensors", "juggernaut-xl-v9.safetensors", "detail-tweaker-xl.safetensors",
    "film-grain-xl.safetensors", "control_v11p_sd15_depth.safetensors", "control_v11p_sd15_openpose.safetensors",
    "a.safetensors", "b.safetensors",
)

LINK_TYPES = {"MODEL", "CLIP", "VAE", "CONDITIONING", "LATENT", "IMAGE", "MASK", "CONTROL_NET"}


@dataclass(frozen=True)
class NodeSpec:
    inputs: dict[str, tuple[str, dict]]
    outputs: tuple[str, ...] = ()
    output_node: bool = False


_INT_MAX = 0xFFFFFFFFFFFFFFFF
NODES: dict[str, NodeSpec] = {
    "CheckpointLoaderSimple": NodeSpec({"ckpt_name": ("MODEL_FILE", {})},
                 outputs=("MODEL", "CLIP", "VAE"), output_node=False),
    "LoraLoader": NodeSpec({"model": ("MODEL", {}), "clip": ("CLIP", {}), "lora_name": ("MODEL_FILE", {}),
                            "strength_model": ("FLOAT", {"min": -100.0, "max": 100.0}),
                            "strength_clip": ("FLOAT", {"min": -100.0, "max": 100.0})},
                 outputs=("MODEL", "CLIP"), output_node=False),
    "CLIPTextEncode": NodeSpec({"text": ("STRING", {}), "clip": ("CLIP", {})},
                 outputs=("CONDITIONING",), output_node=False),
    "EmptyLatentImage": NodeSpec({"width": ("INT", {"min": 16, "max": 16384}), "height": ("INT", {"min": 16, "max": 16384}),
                                  "batch_size": ("INT", {"min": 1, "max": 4096})},
                 outputs=("LATENT",), output_node=False),
    "EmptyImage": NodeSpec({"width": ("INT", {"min": 1, "max": 16384}), "height": ("INT", {"min": 1, "max": 16384}),
                            "batch_size": ("INT", {"min": 1, "max": 4096}), "color": ("INT", {"min": 0, "max": 0xFFFFFF})},
                 outputs=("IMAGE",), output_node=False),
    "KSampler": NodeSpec({"model": ("MODEL", {}), "seed": ("INT", {"min": 0, "max": _INT_MAX}),
                          "steps": ("INT", {"min": 1, "max": 10000}), "cfg": ("FLOAT", {"min": 0.0, "max": 100.0}),
                          "sampler_name": ("COMBO", {"values": SAMPLERS}), "scheduler": ("COMBO", {"values": SCHEDULERS}),
                          "positive": ("CONDITIONING", {}), "negative": ("CONDITIONING", {}),
                          "latent_image": ("LATENT", {}), "denoise": ("FLOAT", {"min": 0.0, "max": 1.0})},
                 outputs=("LATENT",), output_node=False),
    "VAEDecode": NodeSpec({"samples": ("LATENT", {}), "vae": ("VAE", {})},
                 outputs=("IMAGE",), output_node=False),
    "VAEEncode": NodeSpec({"pixels": ("IMAGE", {}), "vae": ("VAE", {})},
                 outputs=("LATENT",), output_node=False),
    "LoadImage": NodeSpec({"image": ("INPUT_FILE", {})},
                 outputs=("IMAGE", "MASK"), output_node=False),
    "ImageScale": NodeSpec({"image": ("IMAGE", {}), "upscale_method": ("COMBO", {"values": ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]}),
                            "width": ("INT", {"min": 0, "max": 16384}), "height": ("INT", {"min": 0, "max": 16384}),
                            "crop": ("COMBO", {"values": ["disabled", "center"]})},
                 outputs=("IMAGE",), output_node=False),
    "RepeatLatentBatch": NodeSpec({"samples": ("LATENT", {}), "amount": ("INT", {"min": 1, "max": 64})},
                 outputs=("LATENT",), output_node=False),
    "ControlNetLoader": NodeSpec({"control_net_name": ("MODEL_FILE", {})},
                 outputs=("CONTROL_NET",), output_node=False),
    "ControlNetApply": NodeSpec({"conditioning": ("CONDITIONING", {}), "control_net": ("CONTROL_NET", {}),
                                 "image": ("IMAGE", {}), "strength": ("FLOAT", {"min": 0.0, "max": 10.0})},
                 outputs=("CONDITIONING",), output_node=False),
    "SaveImage": NodeSpec({"images": ("IMAGE", {}), "filename_prefix": ("STRING", {})},
                 outputs=(), output_node=True),
    "PreviewImage": NodeSpec({"images": ("IMAGE", {})},
                 outputs=(), output_node=True),
    "SaveAnimatedWEBP": NodeSpec({"images": ("IMAGE", {}), "filename_prefix": ("STRING", {}),
                                  "fps": ("FLOAT", {"min": 0.01, "max": 1000.0}), "lossless": ("BOOLEAN", {}),
                                  "quality": ("INT", {"min": 0, "max": 100}),
                                  "method": ("COMBO", {"values": ["default", "fastest", "slowest"]})},
                 outputs=(), output_node=True),
}


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)) and isinstance(value[1], int)

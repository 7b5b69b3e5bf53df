"""The generation plugin families: workflow templates, generation models, prompt filters.

A **workflow template** is a ComfyUI API-format graph plus its typed parameters; each
parameter names the ``replace_from_string`` marker it replaces in the graph. A **model**
(the legacy ``generateImage``/``generateVideo`` catalogue) names the template it runs on and
maps its legacy fields onto that template's parameters. A **prompt filter** is the
``filter_prompt`` hook: it returns the words of a prompt that must be ignored.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

DATA_TYPES = ("string", "number", "boolean", "array", "object", "file", "files", "filesGroup", "dropdown")
MEDIA_TYPES = ("StaticImage", "AnimatedImage", "Video", "Text", "Music", "Other", "Unknown")


@dataclass(frozen=True)
class TemplateParameter:
    """One parameter of a workflow template (the contract's WorkflowTemplateParameter).

    ``name`` is what clients pass (``{"name": "Steps", "value": "30"}``); every occurrence of
    ``replace_from_string`` in the graph is replaced by the value: a string that is exactly
    the marker takes the typed value (a number stays a number), a longer string has the
    marker replaced by the value's text. ``min``/``max`` bound numbers (and the length of
    strings); ``increment`` makes a number a multiple of it from ``min`` (an integral
    increment makes it an integer).
    """

    name: str
    data_type: str
    replace_from_string: str
    description: str = ""
    default_value: str = ""
    is_optional: bool = False
    min: str | None = None
    max: str | None = None
    increment: str | None = None
    option_name: str = ""
    is_always_visible: bool = True
    is_hidden: bool = False
    file_group: str | None = None
    file_group_destination: str | None = None
    dropdown_items: tuple[str, ...] = ()
    ui_type: str | None = None
    type: str | None = None
    extra_data: Any = None

    def __post_init__(self):
        if self.data_type not in DATA_TYPES:
            raise ValueError(f"parameter {self.name!r}: dataType must be one of {', '.join(DATA_TYPES)}")


@dataclass(frozen=True)
class TemplateFile:
    """A file a template ships or needs (the contract's WorkflowTemplateFile)."""

    file_names: tuple[str, ...]
    support_file_type: str


@dataclass(frozen=True)
class SampleImage:
    """A showcase picture of a model (the contract's ImageThumbnail)."""

    image_id: str
    url: str


@dataclass(frozen=True)
class SamplePrompt:
    """A ready-made prompt shown to users (the contract's Prompt)."""

    positive_prompt: str
    negative_prompt: str = ""


@dataclass(frozen=True)
class PromptUser:
    """Who is generating, as a prompt filter sees them."""

    user_id: str | None
    domain: str
    tier: int = 0
    abuse: int = 0


class WorkflowTemplate:
    """Base class of a workflow template. Subclass it and return the subclass from
    ``register_workflow_templates``; the core instantiates it once per application with the
    plugin's settings.

    ``identifier`` (the contract's ``name``, unique) and ``label`` are required, and so is
    ``graph``. Everything else has a safe default. Outputs: the images written by the node
    ``main_output_node`` become the Items (one per image, in order); for video templates
    ``main_output_node`` writes the animation and ``frames_output_node`` the frames.
    """

    identifier: str = ""
    label: str = ""
    description: str = ""
    deployments: tuple[str, ...] = ("a2stage", "a2prod")
    mtype: str = "image"  # "image" or "video"
    media_type: str = "StaticImage"
    main_output_node: str | None = None
    frames_output_node: str | None = None
    control_net_presets: tuple[str, ...] = ()
    #: Most Items a user may have queued or running on this template at once, per PRO tier
    #: (index = tier; higher tiers use the last entry).
    max_concurrent: tuple[int, ...] = (0, 4, 8)
    #: Most Items one run may produce (the ceiling of the parameter bound to ``batchSize``).
    max_batch_size: int = 8

    def __init__(self, settings: Mapping[str, Any]):
        """``settings``: this template's configuration mapping (may be empty)."""
        if not self.identifier or not self.label:
            raise NotImplementedError(f"{type(self).__name__} must set identifier and label")
        self.settings = dict(settings)

    def graph(self) -> dict:
        """The ComfyUI API-format graph with ``replace_from_string`` markers. Called for every
        run; return a fresh object (the core substitutes into it). Must not perform I/O."""
        raise NotImplementedError

    def parameters(self) -> list[TemplateParameter]:
        """The template's parameters, in display order. Default: none."""
        return []

    def files(self) -> dict[str, TemplateFile]:
        """The contract's ``workflowTemplateFiles``, keyed by name. Default: none."""
        return {}

    def file_groups(self) -> dict[str, list[str]]:
        """File names per file group (answers ``getFileGroupItems``). Default: none."""
        return {}

    def control_net_preset(self, graph: dict, preset: str) -> dict:
        """Apply the named ``preset`` (one of ``control_net_presets``) to ``graph`` and return
        it. Called only with a declared preset. Default: the graph unchanged."""
        return graph

    def fresh_graph(self) -> dict:
        """A deep copy of ``graph()``, so a template returning a constant is never mutated."""
        return copy.deepcopy(self.graph())


class GenerationModel:
    """Base class of a legacy generation model (the contract's Model). Subclass it and return
    the subclass from ``register_models``; the core instantiates it once per application.

    ``identifier`` (``modelID``), ``label`` (``name``) and ``workflow_template`` (the
    identifier of the template it runs on) are required; the rest has safe defaults. The
    default ``template_values`` maps the legacy fields onto parameters of the usual names
    (``Positive Prompt``, ``Steps``, ``Width``...); override it for other templates.
    """

    identifier: str = ""
    label: str = ""
    workflow_template: str = ""
    description: str = ""
    media_type: str = "StaticImage"
    checkpoint: str | None = None  # passed as the template's "Model" parameter
    #: the template used instead of ``workflow_template`` when the request has a source image
    #: (generateVideo's ``input``); it must have an ``Input Image`` file parameter.
    input_template: str | None = None
    min_tier: int = 0
    tier0_concurrent: int = 1
    tier1_concurrent: int = 2
    tier2_concurrent: int = 4
    positive_tokens: tuple[str, ...] = ()
    negative_tokens: tuple[str, ...] = ()
    sample_images: tuple[SampleImage, ...] = ()
    sample_prompts: tuple[SamplePrompt, ...] = ()
    min_steps: int = 1
    max_steps: int = 50
    default_steps: int = 20
    allowed_widths: tuple[int, ...] = (512,)
    allowed_heights: tuple[int, ...] = (512,)
    max_resolution: int = 512 * 512
    default_resolution: tuple[int, int] = (512, 512)
    allowed_samplers: tuple[str, ...] = ("DPM++ 2M Karras",)
    default_sampler: str = "DPM++ 2M Karras"
    min_cfg_scale: float = 1.0
    max_cfg_scale: float = 12.0
    supports_variations: bool = False
    registration_wall: bool = False
    default_face_fix: bool = False
    wiki_url: str | None = None
    #: legacy sampler name -> (ComfyUI sampler_name, scheduler)
    sampler_map: Mapping[str, tuple[str, str]] = {
        "Euler": ("euler", "normal"), "Euler a": ("euler_ancestral", "normal"), "Heun": ("heun", "normal"),
        "DPM2": ("dpm_2", "normal"), "DPM++ 2M": ("dpmpp_2m", "normal"), "DPM++ 2M Karras": ("dpmpp_2m", "karras"),
        "DPM++ SDE Karras": ("dpmpp_sde", "karras"), "DPM++ 2M SDE Karras": ("dpmpp_2m_sde", "karras"),
        "DDIM": ("ddim", "ddim_uniform"), "UniPC": ("uni_pc", "normal"), "LMS": ("lms", "normal"),
    }

    def __init__(self, settings: Mapping[str, Any]):
        """``settings``: this model's configuration mapping (may be empty)."""
        if not self.identifier or not self.label or not self.workflow_template:
            raise NotImplementedError(f"{type(self).__name__} must set identifier, label and workflow_template")
        self.settings = dict(settings)

    @property
    def mtype(self) -> str:
        return "video" if self.media_type in ("Video", "AnimatedImage") else "image"

    def concurrency_for_tier(self, tier: int) -> int:
        """How many Items a user of PRO tier ``tier`` may have queued or running at once."""
        return (self.tier0_concurrent, self.tier1_concurrent, self.tier2_concurrent)[max(0, min(int(tier), 2))]

    def template_values(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Map a validated legacy ``request`` (prompt, negprompt, steps, seed, width, height,
        sampler, cfgscale, restoreFaces, subseed, subseed_strength; absent keys are absent)
        onto the template's parameter values. Called once per generation; must not do I/O.
        Names the template does not have are refused by the core, so return only those."""
        values: dict[str, Any] = {"Positive Prompt": request["prompt"]}
        if request.get("negprompt"):
            values["Negative Prompt"] = request["negprompt"]
        if self.checkpoint:
            values["Model"] = self.checkpoint
        for key, name in (("steps", "Steps"), ("seed", "Seed"), ("width", "Width"), ("height", "Height"),
                          ("cfgscale", "CFG Scale")):
            if request.get(key) is not None:
                values[name] = request[key]
        if request.get("sampler"):
            sampler, scheduler = self.sampler_map.get(request["sampler"], ("euler", "normal"))
            values["Sampler"] = sampler
            values["Scheduler"] = scheduler
        return values

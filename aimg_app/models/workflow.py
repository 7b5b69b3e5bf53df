from __future__ import annotations

import mongoengine as me

from .base import utcnow

# queued -> running -> completed | error; cancelled from queued or running.
WORKFLOW_STATES = ("queued", "running", "completed", "error", "cancelled")


class WorkflowState(me.Document):
    """One run of a workflow template on ComfyUI: what was asked (the rendered graph and
    its parameters), where it runs, and what came out. Legacy ``generateImage`` and
    ``generateVideo`` requests are runs too (``generator_version`` "1").

    A running state holds a lease (``lease_until``) that its worker renews; a lease that
    lapses means the worker died, and the run is queued again. Only ``services.runs``
    writes it.
    """

    id = me.StringField(primary_key=True)  # the contract's _id
    public_id = me.StringField(required=True, unique=True)  # the workflowId
    domain = me.StringField(required=True)
    user_id = me.StringField(required=True)
    user_email = me.StringField(null=True)
    generator_version = me.StringField(default="2", choices=("1", "2"))
    template_name = me.StringField(required=True)
    model_id = me.StringField(null=True)
    mtype = me.StringField(default="image", choices=("image", "video"))
    run_parameters = me.ListField(me.DictField())  # [{"name", "value"}], values as strings
    graph_json = me.StringField(required=True)  # the ComfyUI graph, markers substituted
    uploads = me.ListField(me.DictField())  # [{"marker", "file_id"}]: files sent to ComfyUI first
    main_output_node = me.StringField(null=True)
    frames_output_node = me.StringField(null=True)
    item_ids = me.ListField(me.StringField())
    folder_id = me.StringField(null=True)
    ignored_words = me.ListField(me.StringField())
    # queueing
    queue_name = me.StringField(required=True)
    state = me.StringField(default="queued", choices=WORKFLOW_STATES)
    cancel_requested = me.BooleanField(default=False)
    attempts = me.IntField(default=0)  # runs started (a requeue after a dead worker adds one)
    lease_until = me.DateTimeField(null=True)
    worker_name = me.StringField(null=True)
    comfy_server = me.StringField(null=True)
    prompt_id = me.StringField(null=True)  # on comfy_server, submitted with client id = this state's id
    progress = me.FloatField(default=0.0)
    status_message = me.StringField(null=True)  # why a claimed run is not on a GPU yet
    # outcome
    error_message = me.StringField(null=True)
    output_files = me.ListField(me.DictField())  # WorkflowOutputFileEntry, plus the file id
    log = me.ListField(me.StringField())
    created_date = me.DateTimeField(default=utcnow)
    start_time = me.DateTimeField(null=True)
    end_time = me.DateTimeField(null=True)

    @property
    def is_started(self) -> bool:
        return self.state != "queued" or self.start_time is not None

    @property
    def is_complete(self) -> bool:
        return self.state == "completed"

    @property
    def is_error(self) -> bool:
        return self.state in ("error", "cancelled")

    meta = {
        "collection": "workflow_states",
        "strict": False,  # documents written before the flags were derived still load
        "indexes": [
            ("user_id", "-created_date"),
            ("state", "lease_until"),  # finding runs whose worker died
            ("state", "-end_time", "-id"),  # the latest failed runs (Admin UI)
        ],
    }

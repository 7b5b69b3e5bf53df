"""Every Admin UI action, recorded with the admin's name (a document and a log line)."""
from __future__ import annotations

import logging
import uuid

from ..models.admin_action import AdminAction

log = logging.getLogger("aimg.admin")


def record(domain: str, admin: str, action: str, target_type: str, target_id: str, success: bool = True,
           **detail) -> None:
    AdminAction(id=str(uuid.uuid4()), domain=domain, admin=admin, action=action, target_type=target_type,
                target_id=target_id, success=success, detail={k: v for k, v in detail.items() if v is not None}
                ).save(force_insert=True)
    log.info("admin action %s", action, extra={"admin": admin, "action": action, "targetType": target_type,
                                               "targetId": target_id, "success": success})

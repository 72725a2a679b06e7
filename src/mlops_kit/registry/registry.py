"""The registry facade over ``MlflowClient``: versions, aliases, gates, approvals, audit.

Aliases (not the deprecated stages) say what each version is for:

* ``challenger``: the candidate, promoted with ``target="challenger"``;
* ``champion``: production; serving follows it;
* ``previous_champion``: the champion before the current one, so a rollback is one
  alias move. The registered-model tag ``mlops_kit.champion_history`` keeps the whole
  chain, so rollback works more than once.

Every alias move happens under :func:`~mlops_kit.registry.lock.registry_lock` after
re-reading the champion (compare-and-set): of two promotions racing from the same
champion, one wins and the other is refused with the check ``champion_unchanged``.

:class:`ModelRegistry` is assembled from :class:`~mlops_kit.registry.versions.RegistryVersions`
(lookup, artifacts, registration, reads) and
:class:`~mlops_kit.registry.promotion.RegistryPromotions` (approvals, evaluation, gates,
promotion); rollback is here.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_kit.registry.audit import now_iso
from mlops_kit.registry.errors import RegistryError
from mlops_kit.registry.gates import Check
from mlops_kit.registry.names import CHALLENGER, CHAMPION, PREVIOUS, TAG_HISTORY, TAG_ROLLED_BACK
from mlops_kit.registry.promotion import Decision, RegistryPromotions


class ModelRegistry(RegistryPromotions):
    """Register, evaluate, promote, approve and roll back versions of registered models.

    Args:
        settings: :class:`~mlops_kit.config.Settings` (default: :func:`load_settings`).
        tracking_uri: MLflow tracking URI (default: :func:`~mlops_kit.tracking.tracking_target_of`).
        state_uri: folder of the audit logs and file locks (default
            ``<storage.state_uri>/registry``).
        mirror: a :class:`~mlops_kit.registry.sagemaker_mirror.SageMakerMirror` to keep in
            sync (default: one from the settings when ``registry.sagemaker_mirror``).
    """

    # ------------------------------------------------------------------ rollback
    def rollback(self, name: str, why: str, who: str = "") -> dict[str, Any]:
        """Point ``champion`` back to ``previous_champion`` and record why.

        ``previous_champion`` then moves one step further back along the champion history,
        so a second rollback goes back again.

        Raises:
            RegistryError: ``why`` is empty, or there is no previous champion.
            ModelNotFoundError: unknown model.
        """
        if not why.strip():
            raise RegistryError("a rollback needs a reason (why)")
        self._registered(name)
        with self._lock(name):
            aliases = self.aliases(name)
            current, previous = aliases.get(CHAMPION), aliases.get(PREVIOUS)
            if previous is None:
                raise RegistryError(
                    f"model '{name}' has no previous champion to roll back to "
                    f"(champion: {current or 'none'})"
                )
            history = self._history(name)
            while history and history[-1] != previous:
                history.pop()
            before = history[-2] if len(history) >= 2 else None
            client = self.client
            client.set_registered_model_alias(name, CHAMPION, previous)
            if before is not None:
                client.set_registered_model_alias(name, PREVIOUS, before)
            else:
                client.delete_registered_model_alias(name, PREVIOUS)
            client.set_registered_model_tag(name, TAG_HISTORY, json.dumps(history))
            at = now_iso()
            if current is not None:
                client.set_model_version_tag(
                    name, current, TAG_ROLLED_BACK, json.dumps({"who": who, "why": why, "at": at})
                )
            entry = self.audit_log.append(
                name,
                {
                    "action": "rollback",
                    "from_version": current,
                    "version": previous,
                    "previous_champion": before,
                    "who": who,
                    "why": why,
                },
            )
            if self.mirror is not None:
                if current is not None:
                    self._mirror_status(name, current, "Rejected", f"rolled back: {why}")
                self._mirror_status(name, previous, "Approved", "champion after rollback")
        return {
            "name": name,
            "from_version": current,
            "champion": previous,
            "previous_champion": before,
            "why": why,
            "who": who,
            "audit_id": entry["id"],
        }


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS",
    "Check",
    "Decision",
    "ModelRegistry",
]

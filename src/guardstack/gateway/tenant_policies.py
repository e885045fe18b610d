"""Per-tenant policies: ``--tenant-policies DIR`` holds ``TENANT.yaml``
files, and a request whose API key belongs to that tenant is judged by its
file (thresholds, actions, fail modes, crisis language, safety system prompt)
instead of ``--policy``.

One gateway often serves several applications: a children's tutoring app
that should refuse more, a security team whose work is exploit analysis. The
classifier is shared (it is the expensive part), so every tenant policy must
name the gateway's detector; its scores are then read against each tenant's
own thresholds.
"""

from __future__ import annotations

from pathlib import Path

from guardstack.policy import Policy, PolicyError

SUFFIXES = (".yaml", ".yml")


def load(folder: str | Path, *, detector: str) -> dict[str, Policy]:
    """``{tenant: policy}`` from the files in ``folder``; a
    :class:`PolicyError` naming the file for anything wrong."""
    root = Path(folder)
    if not root.is_dir():
        raise PolicyError("not a folder of per-tenant policy files", source=str(root))
    out: dict[str, Policy] = {}
    for path in sorted(p for p in root.iterdir() if p.suffix in SUFFIXES and p.is_file()):
        tenant = path.stem
        if tenant in out:
            raise PolicyError(f"a second policy for tenant {tenant!r}", source=str(path))
        policy = Policy.load(path)
        if policy.detector != detector:
            raise PolicyError(f"detector {policy.detector!r}: every tenant policy must use the "
                              f"gateway's detector ({detector!r}), which all tenants share",
                              source=str(path), field="detector")
        out[tenant] = policy
    return out


def read(policy: str | None, folder: str | None) -> tuple[Policy, dict[str, Policy]]:
    """The gateway's policy (``--policy``, else the shipped default) and its
    tenants' (``--tenant-policies``, if given): what ``serve`` starts with
    and what a reload re-reads. A :class:`PolicyError` for anything wrong."""
    main = Policy.load(policy) if policy else Policy.default()
    return main, (load(folder, detector=main.detector) if folder else {})

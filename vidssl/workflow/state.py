"""Stage bookkeeping of a workflow run directory: ``OUT/workflow.json``.

For every stage: ``status`` (``pending``, ``running``, ``done``, ``failed``,
``interrupted``), ``digest`` (a hash of the stage's settings and of its inputs'
digests), ``seconds`` (all invocations together), ``output`` and a ``note``.

A stage that is ``done`` with the same digest is skipped; ``done`` with another digest
stops the workflow (its outputs belong to other settings) unless it is redone. A
stage that did not finish runs again: extraction skips the videos already done, a
training stage resumes from its checkpoint (the engine's own resume).
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable

from vidssl.errors import ConfigError
from vidssl.fileio import atomic_write_text

STATE_FILE = "workflow.json"


def digest(obj) -> str:
    """16 hex digits of the JSON form of ``obj`` (keys sorted)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class WorkflowState:
    """The records of ``out / workflow.json`` and this invocation's outcome per stage."""

    def __init__(self, out: str | Path, stages: list[str], header: dict):
        self.path = Path(out) / STATE_FILE
        self.order = list(stages)
        data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.stages: dict[str, dict] = data.get("stages", {})
        self.header = {**data.get("header", {}), **header}
        self.now: dict[str, tuple[str, float]] = {}  # this invocation: stage -> (status, seconds)

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps({"header": self.header, "stages": self.stages}, indent=2) + "\n")

    def _set(self, name: str, **fields) -> None:
        self.stages.setdefault(name, {"status": "pending", "seconds": 0.0}).update(fields)
        self.save()

    def run(self, name: str, settings: dict, fn: Callable[[bool], tuple[str, str]], *, redo: bool = False,
            done_ok: Callable[[], bool] = lambda: True, defaults: dict | None = None) -> str:
        """Run stage ``name`` unless it is done with these settings; returns their digest.

        ``settings``: what the stage's result depends on (JSON-able; the digests of its
        inputs included). ``fn(redo) -> (output, note)`` does the work (``redo``: start
        over rather than resume); ``done_ok()`` says whether a done stage's output is
        still there. ``defaults``: the settings' default values; a key that a done stage's
        record lacks (added to vidssl since) and that is at its default is no change.
        """
        settings_digest = digest(settings)
        rec = self.stages.get(name)
        if rec and rec["status"] == "done" and not redo:
            if rec.get("digest") != settings_digest:
                changed = changed_keys(rec.get("settings", {}), settings, defaults=defaults or {})
                if changed or "settings" not in rec:
                    raise ConfigError(
                        f"workflow stage '{name}' finished earlier with other settings (changed: "
                        f"{', '.join(changed[:6]) or 'unknown'}); run again with --redo {name} (it and the stages "
                        "after it start over), or use another --out")
                settings_digest = rec["digest"]  # only new keys at their defaults: the same stage
            if done_ok():
                self.now[name] = ("skipped", 0.0)
                return settings_digest
        if rec and rec.get("digest") not in (None, settings_digest) and rec["status"] != "done" and not redo:
            print(f"[workflow] warning: the settings of stage '{name}' changed since it was interrupted")
        print(f"[workflow] stage {name} ...", flush=True)
        before = float(rec["seconds"]) if rec and not redo else 0.0
        self._set(name, status="running", digest=settings_digest, settings=settings, seconds=before, note="",
                  error=None)
        t0 = time.time()
        status, error = "failed", None
        try:
            output, note = fn(redo)
            status = "done"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except Exception as e:  # noqa: BLE001 - recorded, then raised again
            error = f"{type(e).__name__}: {e}"
            raise
        finally:
            secs = time.time() - t0
            fields = {"status": status, "seconds": before + secs, "error": error,
                      "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")}
            if status == "done":
                fields.update(output=output, note=note)
            self._set(name, **fields)
            self.now[name] = (status, secs)
        return settings_digest

    def mark_off(self, name: str) -> None:
        self.now[name] = ("off", 0.0)

    def summary(self) -> str:
        """A table: stage, status of this invocation, its time, total time, output or note."""
        rows = [("stage", "status", "time", "total", "output")]
        for name in self.order:
            rec = self.stages.get(name, {})
            status, secs = self.now.get(name, (rec.get("status", "pending"), 0.0))
            total = rec.get("seconds")
            what = rec.get("error") if status in ("failed", "interrupted") else rec.get("note") or rec.get("output")
            rows.append((name, status, _secs(secs) if status not in ("skipped", "off", "pending") else "-",
                         _secs(total) if total else "-", str(what or "")))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)


def changed_keys(old: dict, new: dict, prefix: str = "", defaults: dict | None = None) -> list[str]:
    """Dotted keys whose values differ between two nested dicts; a key only in ``new`` whose
    value equals its entry in ``defaults`` is not a change."""
    out, defaults = [], defaults or {}
    for k in sorted(set(old) | set(new), key=str):
        a, b, d = old.get(k), new.get(k), defaults.get(k) if isinstance(defaults, dict) else None
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_keys(a, b, f"{prefix}{k}.", d if isinstance(d, dict) else {})
        elif k not in old and k in defaults and _same(b, d):
            continue
        elif not _same(a, b):
            out.append(f"{prefix}{k}")
    return out


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _secs(s: float) -> str:
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}min"

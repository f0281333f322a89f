"""Backends: the registry (which backends exist), the protocol (what each implements), and one
package per backend. See ARCHITECTURE.md."""

from __future__ import annotations

from mfproj.backends.registry import CLI_NAMES, LABELS, NAMES, SPECS, create, for_run_id, label, normalize, spec

__all__ = ["CLI_NAMES", "LABELS", "NAMES", "SPECS", "create", "for_run_id", "label", "normalize", "spec"]

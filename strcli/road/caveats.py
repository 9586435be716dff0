"""What says that an output's bodies are not real results: the networks its manifest records
as untrained (randomly initialised) and the generated test body (`overlay_caveats`). The
render's caption burns it into the frames (`strcli.render.caption`), the viewer shows it at
the top of its page, and the exports write it into their files (the .glb's
`extras.strcli.caveat`, bvh/info.json's `caveat`): a result never travels without it.
"""

from __future__ import annotations

from typing import Any

from strcli.body.files import TEST_BODY_NOTE

# The manifest's names of the networks, as a caption names them.
_NETWORK_NAMES = {"str": "STR", "tcmr": "TCMR", "vibe": "VIBE", "spin": "SPIN", "backbone": "ResNet-50",
                  "detector": "detector"}


# The temporal models: in a --compare panel only its own model's state is named.
_TEMPORAL = ("str", "tcmr", "vibe")


def overlay_caveats(manifest: dict[str, Any], body_note: str = "", model: str | None = None) -> str:
    """The caption every frame of a render carries when its bodies are not real results, or
    "": the networks the manifest records as randomly initialised or untrained
    (`WeightsUsed` with no file and a "random init" note, or an "untrained" one: --untrained,
    a detector built from a yaml) and the generated test body (the manifest's SMPL entry
    says `TEST_BODY_NOTE`, or `body_note`, the body drawn now, does). ASCII only: OpenCV's
    fonts draw no other. `model` (a --compare panel's, e.g. "tcmr"): of the temporal models
    only that one is named; the networks and body they share always are."""
    untrained, test_body = [], bool(body_note)
    for used in manifest.get("weights", []):
        if not isinstance(used, dict):
            continue
        note = str(used.get("note") or "")
        if used.get("name") == "smpl" and note == TEST_BODY_NOTE:
            test_body = True
        elif (used.get("path") is None and note.startswith("random init")) or note.startswith("untrained"):
            name = str(used.get("name"))
            if model is not None and name in _TEMPORAL and name != model:
                continue
            untrained.append(_NETWORK_NAMES.get(name, name))
    parts = []
    if untrained:
        parts.append(f"untrained {', '.join(dict.fromkeys(untrained))} (random weights)")
    if test_body:
        parts.append("a generated test body, not SMPL")
    return f"TEST ONLY, NOT REAL BODIES: {'; '.join(parts)}" if parts else ""

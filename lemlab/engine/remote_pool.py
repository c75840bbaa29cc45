"""Connect the endpoints of a run spread over servers: one RemoteEngine per (endpoint, variant),
loaded (the server's model list checked, an adapter tried once), as EndpointSlots for
lemlab.core.remote.parallel_runs. No mlx here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.remote.endpoints import (
    Endpoint,
    EndpointError,
    EndpointUnreachable,
    parse_model_spec,
)
from lemlab.core.remote.parallel_runs import EndpointSlot
from lemlab.engine.remote import RemoteEngine

LOAD_TIMEOUT = 120.0


def connect_slots(
    specs: Sequence[str],
    variants: Sequence[tuple[str, str | None]],
    *,
    max_in_flight: int | None = None,
    endpoints: Mapping[str, Endpoint] | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> tuple[list[EndpointSlot], list[str]]:
    """(slots, warnings). `variants` are (name, adapter) pairs, "" the base model. An endpoint
    that cannot be reached now is skipped with a warning while another one connects; any other
    failure (a refused adapter, an unknown model) is a LemlabError."""
    slots: list[EndpointSlot] = []
    warnings: list[str] = []
    unreachable: list[str] = []
    for spec in specs:
        label = _unique(parse_model_spec(spec, endpoints).label, slots)
        try:
            engines = _load_all(spec, variants, endpoints, extra_body, label, warnings)
        except EndpointError as exc:
            if not exc.retryable:
                raise LemlabError(f"endpoint {label}: {exc}") from None
            unreachable.append(f"{label}: {exc}")
            warnings.append(f"endpoint {label} is not reachable now: skipped ({exc})")
            continue
        base = engines[""]
        assert base.endpoint is not None
        cap = max_in_flight or base.endpoint.max_in_flight
        slots.append(EndpointSlot(label, engines, cap, base.ping))
    if not slots:
        raise LemlabError("no endpoint reachable: " + "; ".join(unreachable))
    _same_model(slots)
    return slots, warnings


def _load_all(
    spec: str,
    variants: Sequence[tuple[str, str | None]],
    endpoints: Mapping[str, Endpoint] | None,
    extra_body: Mapping[str, Any] | None,
    label: str,
    warnings: list[str],
) -> dict[str, RemoteEngine]:
    engines: dict[str, RemoteEngine] = {}
    for name, adapter in variants:
        engine = RemoteEngine(endpoints, extra_body=extra_body)
        try:
            info = engine.load(spec, adapter).result(timeout=LOAD_TIMEOUT)
        except TimeoutError:  # the future's wait, not a request: say what it means
            raise EndpointUnreachable(
                f"no answer within {LOAD_TIMEOUT:g} s while connecting"
            ) from None
        warnings += [f"{label}: {w}" for w in info.warnings if f"{label}: {w}" not in warnings]
        engines[name] = engine
    return engines


def _unique(label: str, slots: Sequence[EndpointSlot]) -> str:
    taken = {s.label for s in slots}
    n, out = 1, label
    while out in taken:
        n += 1
        out = f"{label}#{n}"
    return out


def _same_model(slots: Sequence[EndpointSlot]) -> None:
    """Every endpoint must serve the same model: one run compares conditions on one model."""
    models = {}
    for s in slots:
        endpoint = s.engines[""].endpoint  # type: ignore[attr-defined]
        models[s.label] = endpoint.model if endpoint is not None else None
    if len(set(models.values())) > 1:
        shown = ", ".join(f"{k} serves {v or '(its default)'}" for k, v in models.items())
        raise LemlabError(f"the endpoints serve different models ({shown})")


def shutdown_slots(slots: Sequence[EndpointSlot]) -> None:
    for s in slots:
        for engine in s.engines.values():
            engine.shutdown()

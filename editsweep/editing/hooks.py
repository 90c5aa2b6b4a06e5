"""Forward hooks: read a module's input or output, rewrite its output, stop the forward early.

Every hook is a context manager that removes itself, so a failed edit never leaves a hook
behind. Decoder layers return a tensor in transformers 5 and a tuple in older versions; both
are handled.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

__all__ = ["StopForward", "stop_after", "capture", "rewrite_output", "frozen", "hidden_of"]


class StopForward(Exception):
    """Raised by `stop_after` once the last module needed has run."""


def hidden_of(output: Any) -> Any:
    """The hidden-state tensor of a module output (a tensor, or the first item of a tuple)."""
    return output[0] if isinstance(output, tuple) else output


def _with_hidden(output: Any, hidden: Any) -> Any:
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


@contextlib.contextmanager
def stop_after(module: Any) -> Iterator[None]:
    """Abort the forward pass after `module` ran; the `with` body catches nothing itself."""

    def hook(_module, _inputs, _output):
        raise StopForward

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def capture(modules: dict[str, Any], what: str = "output", detach: bool = True) -> Iterator[dict[str, Any]]:
    """Record each module's first input or its output on every call; `store[name]` is the last one."""
    if what not in ("input", "output"):
        raise ValueError(f"capture what must be 'input' or 'output', got {what!r}")
    store: dict[str, Any] = {}
    handles = []
    for name, module in modules.items():

        def hook(_module, inputs, output, _name=name):
            value = inputs[0] if what == "input" else hidden_of(output)
            store[_name] = value.detach() if detach else value

        handles.append(module.register_forward_hook(hook))
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def rewrite_output(module: Any, fn: Callable[[Any], Any]) -> Iterator[None]:
    """Replace the module's hidden output by `fn(hidden)`; `fn` returning None leaves it as is."""

    def hook(_module, _inputs, output):
        new = fn(hidden_of(output))
        return None if new is None else _with_hidden(output, new)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def frozen(model: Any) -> Iterator[None]:
    """Eval mode and no parameter gradients for the duration; the previous state comes back."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    training = model.training
    for p, _ in flags:
        p.requires_grad_(False)
    model.eval()
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)

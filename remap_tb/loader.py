"""Entry point of the ``remap`` TensorBoard plugin (``tensorboard_plugins`` group).

Kept light on purpose: an import error here stops the whole ``tensorboard``
command, so this module imports only TensorBoard's ``base_plugin``; the plugin
itself (numpy, scikit-learn, POT) is imported in ``load()``.

Flags (``tensorboard --help``, group "remap"):

- ``--remap_workers N``: local queue workers to start with TensorBoard
  (default 1; 0 starts none, e.g. when workers run elsewhere).
- ``--remap_max_params N``: the parameter cap for validate/enqueue (default 50,000,000).
- ``--remap_max_memory SIZE`` (e.g. ``4G``), ``--remap_max_epochs N``, ``--remap_max_run_seconds S``:
  what one training request may take (``remap_tb/run_limits.py``; defaults: a quarter of
  this machine's memory, 500 epochs, 6 hours), checked at validate, generate and
  enqueue and passed on to the workers started here.
- ``--remap_allowed_hosts a,b``: host names besides this machine's own that may use the
  plugin's routes (``remap_tb/host_guard.py``: a guard against DNS rebinding).

``fix_flags`` also makes TensorBoard keep every ``remap`` datum
(``--samples_per_plugin remap=0`` unless the user set it): by default it would
keep only 10 points per tag of a third-party plugin.

And it makes a finished model show up at once: when the user did not pass
``--reload_interval`` and the Rust data server may load the logdir (``--load_fast``
``auto`` or ``true``), the interval becomes 1 s instead of TensorBoard's 5 s (the data
server takes whole seconds; it reads only new data each time). ``define_flags`` marks
TensorBoard's default value (``_DefaultReloadInterval``), so a value the user gave,
5 included, is kept. The Python loader keeps 5 s: the plugin reloads a run itself
when the queue says it finished (``RemapPlugin._current_snapshot``).
"""

from __future__ import annotations

import atexit

from tensorboard.plugins import base_plugin

from remap_tb import host_guard, run_limits
from remap_tb.spec.schema import DEFAULT_LIMITS

DEFAULT_WORKERS = 1
# --reload_interval when the user did not set one and the Rust data server may be used (seconds).
FAST_RELOAD_INTERVAL = 1.0
MAX_WORKERS = 64
MAX_MAX_PARAMS = 10**12


class _DefaultReloadInterval(float):
    """TensorBoard's default ``--reload_interval``, marked so that ``fix_flags`` can tell it
    from a value the user typed (argparse keeps a non-string default object as it is)."""


class RemapLoader(base_plugin.TBLoader):
    """Defines the plugin's flags and builds ``RemapPlugin`` lazily."""

    def define_flags(self, parser) -> None:
        group = parser.add_argument_group("remap")
        group.add_argument(
            "--remap_workers", metavar="N", type=int, default=DEFAULT_WORKERS,
            help=f"REMAP: number of local queue workers to start with TensorBoard on --logdir "
                 f"(0 to {MAX_WORKERS}; 0 starts none). (default: %(default)s)")
        group.add_argument(
            "--remap_max_params", metavar="N", type=int, default=DEFAULT_LIMITS.max_params,
            help="REMAP: largest parameter count a model may have to be validated as fine "
                 "or queued for training. (default: %(default)s)")
        group.add_argument(
            "--remap_max_memory", metavar="SIZE", default="",
            help="REMAP: largest estimated training memory of one request (activations at the training batch "
                 "size with their gradients, parameters, gradients and optimiser state), e.g. 4G or 512M; "
                 "validate, generate and enqueue refuse larger models, and workers started here train under "
                 "this memory limit. (default: a quarter of this machine's memory)")
        group.add_argument(
            "--remap_max_epochs", metavar="N", type=int, default=run_limits.DEFAULT_MAX_EPOCHS,
            help="REMAP: most epochs one request may train. (default: %(default)s)")
        group.add_argument(
            "--remap_max_run_seconds", metavar="SECONDS", type=float, default=run_limits.DEFAULT_MAX_RUN_SECONDS,
            help="REMAP: wall-clock limit of one request; a longer run is stopped and failed. "
                 "(default: %(default)s, 6 hours)")
        group.add_argument(
            "--remap_allowed_hosts", metavar="A,B", default="",
            help="REMAP: host names (comma-separated) by which browsers may reach the plugin besides "
                 "localhost, 127.0.0.1, [::1] and --host; every other Host header gets 403, a guard "
                 "against DNS rebinding. Needed when you open TensorBoard by another name, e.g. after "
                 "--host 0.0.0.0. (default: none)")
        default_reload = parser.get_default("reload_interval")  # TensorBoard's core flags come first
        if isinstance(default_reload, (int, float)) and not isinstance(default_reload, _DefaultReloadInterval):
            parser.set_defaults(reload_interval=_DefaultReloadInterval(default_reload))

    def fix_flags(self, flags) -> None:
        workers = getattr(flags, "remap_workers", DEFAULT_WORKERS)
        if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= MAX_WORKERS:
            raise base_plugin.FlagsError(f"--remap_workers must be an integer from 0 to {MAX_WORKERS}, "
                                         f"got {workers!r}")
        max_params = getattr(flags, "remap_max_params", DEFAULT_LIMITS.max_params)
        if isinstance(max_params, bool) or not isinstance(max_params, int) or not 1 <= max_params <= MAX_MAX_PARAMS:
            raise base_plugin.FlagsError(f"--remap_max_params must be an integer from 1 to {MAX_MAX_PARAMS:,}, "
                                         f"got {max_params!r}")
        try:
            host_guard.parse_allowed_hosts(getattr(flags, "remap_allowed_hosts", ""))
        except ValueError as exc:
            raise base_plugin.FlagsError(str(exc)) from None
        try:
            limits = run_limits.RunLimits.from_flags(flags)
        except (TypeError, ValueError) as exc:
            raise base_plugin.FlagsError(f"--remap_max_memory: {exc}") from None
        problem = run_limits.check_values(limits)
        if problem:
            raise base_plugin.FlagsError(f"{problem} (--remap_max_memory, --remap_max_epochs, "
                                         "--remap_max_run_seconds)")
        samples = getattr(flags, "samples_per_plugin", None)
        if samples is None or isinstance(samples, str):
            # Not parsed (a hand-made flags object): parse the TensorBoard way, "a=1,b=2".
            samples = _parse_samples(samples or "")
            flags.samples_per_plugin = samples
        samples.setdefault("remap", 0)
        reload_interval = getattr(flags, "reload_interval", None)
        if isinstance(reload_interval, _DefaultReloadInterval):  # the user did not set it
            fast = getattr(flags, "load_fast", "auto") != "false" and reload_interval > FAST_RELOAD_INTERVAL
            flags.reload_interval = FAST_RELOAD_INTERVAL if fast else float(reload_interval)

    def load(self, context: base_plugin.TBContext):
        from remap_tb.plugin import RemapPlugin

        plugin = RemapPlugin(context)
        workers = getattr(context.flags, "remap_workers", DEFAULT_WORKERS) if context.flags else 0
        if workers:
            plugin.start_workers(workers)
        atexit.register(plugin.close)
        return plugin


def _parse_samples(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for token in text.split(","):
        if token.strip():
            key, _, value = token.partition("=")
            try:
                out[key.strip()] = int(value)
            except ValueError:
                raise base_plugin.FlagsError(f"--samples_per_plugin: bad entry {token!r}") from None
    return out

"""Times forward + backward of every candidate, alternately in one process, and measures its peak memory.

Time: the median over ``repeats`` rounds; each round runs every candidate once, in a rotated order, so that a
busy neighbour slows all of them alike. Ratios to the native loss of the same run are what to compare across
machines.

Bandwidth floor: the time the bytes a loss must move (read the logits and the target, write the gradient) take
at the device's copy bandwidth, measured in the same run; ``x floor`` is how far each implementation is from it.

Peak memory: the most bytes live at once, above what existed before the call, during one forward + backward
(the gradient included), by :func:`seesaw_losses.memory.peak_tensor_bytes` in a separate, untimed call.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

from .._version import __version__
from ..memory import peak_tensor_bytes
from .baselines import Candidate, candidates
from .workloads import WORKLOADS, Workload

MB = 2.0**20
COPY_BYTES, COPY_BYTES_QUICK = 1 << 28, 1 << 24
"""Size of the copy that measures the device's bandwidth (256 MiB: far beyond any cache; 16 MiB with --quick)."""


def machine_description(device: str) -> Dict[str, object]:
    """CPU model, cores, threads, torch version (and the GPU when on CUDA)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info: Dict[str, object] = {
        "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "seesaw_losses": __version__, "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _step(candidate: Candidate, logits: torch.Tensor, target: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    x = logits.detach().requires_grad_()
    loss = candidate.fn(x, target, counts)
    loss.backward()
    return loss.detach()


def elapsed(fn: Callable[[], object], device: str) -> float:
    """Seconds ``fn()`` takes: between two CUDA events on a GPU (the device's own time, queued work excluded),
    by the wall clock on CPU."""
    if device.startswith("cuda"):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    start_time = time.perf_counter()
    fn()
    return time.perf_counter() - start_time


def _timed(candidate: Candidate, inputs, device: str) -> float:
    return elapsed(lambda: _step(candidate, *inputs), device)


def copy_bandwidth(device: str, nbytes: int, repeats: int) -> float:
    """Bytes per second that a copy of ``nbytes`` within ``device`` moves (each byte read once and written once,
    so ``2 * nbytes`` per copy): the median of ``repeats`` copies after one warm-up copy."""
    source = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    destination = torch.empty_like(source)
    destination.copy_(source)
    seconds = statistics.median(elapsed(lambda: destination.copy_(source), device) for _ in range(repeats))
    return 2 * source.numel() * source.element_size() / seconds


def floor_bytes(logits: torch.Tensor, target: torch.Tensor) -> int:
    """Bytes a forward + backward must move at the least: read the logits and the target, write the gradient
    (the logits' size)."""
    return 2 * logits.numel() * logits.element_size() + target.numel() * target.element_size()


def peak_bytes(candidate: Candidate, inputs, device: str) -> int:
    """Peak bytes of tensors allocated by one forward + backward, above those alive before it."""
    return peak_tensor_bytes(lambda: _step(candidate, *inputs), device)


def run_workload(workload: Workload, *, quick: bool, repeats: int, device: str, memory: bool, bandwidth: float,
                 progress: Callable[[str], None]) -> Dict[str, object]:
    """Every candidate of ``workload``: times, peaks and ratios to the native loss and to the bandwidth floor
    (:func:`floor_bytes` at ``bandwidth`` bytes per second)."""
    logits, target, counts = workload.make(quick=quick, device=device)
    inputs = (logits, target, counts)
    rows: List[Candidate] = candidates(workload, counts)
    losses = {}
    for c in rows:  # warm-up, and a sanity check that every candidate computes a finite loss
        losses[c.name] = float(_step(c, *inputs))
        if not torch.isfinite(torch.tensor(losses[c.name])):
            raise RuntimeError(f"seesaw bench: {c.name} gave a non-finite loss on {workload.name}")
    times: Dict[str, List[float]] = {c.name: [] for c in rows}
    for r in range(repeats):
        order = rows[r % len(rows):] + rows[:r % len(rows)]
        for c in order:
            times[c.name].append(_timed(c, inputs, device))
    peaks = {c.name: peak_bytes(c, inputs, device) for c in rows} if memory else {}
    input_bytes = logits.numel() * logits.element_size()
    native = rows[0].name
    floor = floor_bytes(logits, target) / bandwidth
    median = {name: statistics.median(t) for name, t in times.items()}
    results = []
    for c in rows:
        row = {
            "name": c.name, "group": c.group, "loss": losses[c.name], "median_ms": median[c.name] * 1e3,
            "times_ms": [t * 1e3 for t in times[c.name]], "time_vs_native": median[c.name] / median[native],
            "time_vs_floor": median[c.name] / floor,
        }
        if c.pair is not None:
            row["library_speedup"] = median[c.name] / median[c.pair]
        if memory:
            row["peak_mb"] = peaks[c.name] / MB
            row["peak_vs_input"] = peaks[c.name] / input_bytes
            row["peak_vs_native"] = peaks[c.name] / max(peaks[native], 1)
        results.append(row)
    progress(f"  {workload.name}: done")
    return {
        "name": workload.name, "description": workload.description, "shape": list(logits.shape),
        "target_shape": list(target.shape), "dtype": str(logits.dtype).replace("torch.", ""),
        "input_mb": input_bytes / MB, "floor_mb": floor_bytes(logits, target) / MB, "floor_ms": floor * 1e3,
        "native": native, "rows": results,
    }


def run_benchmark(workloads: Optional[Sequence[str]] = None, *, quick: bool = False, repeats: Optional[int] = None,
                  threads: Optional[int] = 2, device: str = "cpu", memory: bool = True,
                  progress: Callable[[str], None] = print) -> Dict[str, object]:
    """Run the benchmark; returns the JSON-ready result (see :func:`format_table`)."""
    names = list(WORKLOADS) if not workloads else list(workloads)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"seesaw bench: workloads must be among {', '.join(WORKLOADS)}, got {', '.join(unknown)}")
    if threads is not None:
        torch.set_num_threads(threads)
    repeats = repeats if repeats is not None else (3 if quick else 11)
    torch.manual_seed(0)
    bandwidth = copy_bandwidth(device, COPY_BYTES_QUICK if quick else COPY_BYTES, repeats)
    result = {"machine": machine_description(device), "quick": quick, "repeats": repeats,
              "copy_gb_per_s": bandwidth / 1e9, "workloads": []}
    for name in names:
        progress(f"seesaw bench: {name} ...")
        result["workloads"].append(run_workload(WORKLOADS[name], quick=quick, repeats=repeats, device=device,
                                                memory=memory, bandwidth=bandwidth, progress=progress))
    return result


def format_table(result: Dict[str, object]) -> str:
    """A Markdown table per workload: median time and peak memory, as ratios to the native loss (and to the
    bandwidth floor, in results that measured it)."""
    lines = []
    m = result["machine"]
    floor = "copy_gb_per_s" in result
    lines.append(f"{m['cpu']}, {m['cpu_count']} cores, {m['torch_threads']} torch threads, torch {m['torch']}, "
                 f"device {m['device']}{', ' + m['gpu'] if 'gpu' in m else ''}; median of {result['repeats']} "
                 "rounds, forward + backward"
                 + (f"; copy bandwidth {result['copy_gb_per_s']:.1f} GB/s" if floor else ""))
    for w in result["workloads"]:
        lines.append("")
        lines.append(f"**{w['name']}**: {w['description']}, logits {tuple(w['shape'])} {w['dtype']} "
                     f"({w['input_mb']:.1f} MB); ratios to `{w['native']}`"
                     + (f" and to the bandwidth floor ({w['floor_mb']:.1f} MB moved: {w['floor_ms']:.2f} ms)"
                        if floor else ""))
        lines.append("")
        has_memory = "peak_mb" in w["rows"][0]
        header = "| implementation | ms | x native |" + (" x floor |" if floor else "") + " library speedup |"
        rule = "|---|---:|---:|" + ("---:|" if floor else "") + "---:|"
        if has_memory:
            header += " peak MB | peak / input | peak x native |"
            rule += "---:|---:|---:|"
        lines += [header, rule]
        for r in w["rows"]:
            speedup = f"{r['library_speedup']:.1f}x" if "library_speedup" in r else ""
            name = f"**{r['name']}**" if r["group"] == "library" else r["name"]
            line = (f"| {name} | {r['median_ms']:.1f} | {r['time_vs_native']:.2f} | "
                    + (f"{r['time_vs_floor']:.1f} | " if floor else "") + f"{speedup} |")
            if has_memory:
                line += f" {r['peak_mb']:.1f} | {r['peak_vs_input']:.2f} | {r['peak_vs_native']:.2f} |"
            lines.append(line)
    return "\n".join(lines)


def write_json(result: Dict[str, object], path: str) -> None:
    _write(path, json.dumps(result, indent=1))


def write_markdown(result: Dict[str, object], path: str) -> None:
    """:func:`format_table` as a Markdown file."""
    _write(path, format_table(result))


def _write(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")

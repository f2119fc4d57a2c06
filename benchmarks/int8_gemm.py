"""The most int8 can gain here: ONNX Runtime's int8 and float32 matrix products, side by side.

    python benchmarks/int8_gemm.py [--tokens 1024] [--hidden 384] [--intermediate 1536]
        [--threads 2] [--repeats 30]

Times, on the shapes of one BERT layer with ``--tokens`` tokens per batch, a float32 ``MatMul``
against ``DynamicQuantizeMatMul`` (the kernel ``quantize="int8"`` runs: quantize the activations
per tensor, int8 x int8 product, rescale to float) with int8 weights in the full range (-127..127)
and in the reduced range (-63..63) that avoids the int16 saturation of the AVX2 ``vpmaddubsw``
instruction on CPUs without AVX-VNNI. The speed-up of these kernels bounds the speed-up of the
whole int8 model, whose other operators (attention, layer norm, GELU) stay float32; it also
prints whether the CPU has VNNI (int8 dot-product instructions), which raises it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def session(nodes: list, inits: list, m: int, k: int, threads: int):  # type: ignore[no-untyped-def,type-arg]
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = min(model.ir_version, 9)  # readable by older ONNX Runtime releases too
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def seconds(sess, x: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:  # type: ignore[no-untyped-def]
    out = sess.run(None, {"X": x})[0]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sess.run(None, {"X": x})
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--intermediate", type=int, default=1536)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    from onnx import helper, numpy_helper

    flags = cpu_flags()
    vnni = sorted(f for f in flags if "vnni" in f) or ["none"]
    print(f"AVX2: {'avx2' in flags}, AVX-512: {'avx512f' in flags}, VNNI: {', '.join(vnni)}")
    h, i, m = args.hidden, args.intermediate, args.tokens
    shapes = {
        "attention QKV": (h, 3 * h),
        "attention output": (h, h),
        "FFN up": (h, i),
        "FFN down": (i, h),
    }
    rng = np.random.default_rng(0)
    print(f"{m} tokens, {args.threads} threads, median of {args.repeats}")
    print(
        "| product | float32 GFLOP/s | int8 GFLOP/s (reduced range) | int8 (full range) "
        "| speed-up (reduced) | rel. error reduced / full |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    total_fp, total_q = 0.0, 0.0
    for name, (k, n) in shapes.items():
        w = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)
        x = rng.standard_normal((m, k)).astype(np.float32)
        reference = x @ w
        flop = 2 * m * k * n
        fp_s, _ = seconds(
            session(
                [helper.make_node("MatMul", ["X", "W"], ["Y"])],
                [numpy_helper.from_array(w, "W")],
                m,
                k,
                args.threads,
            ),
            x,
            args.repeats,
        )
        result = {}
        for qmax in (63, 127):
            scale = (np.abs(w).max(axis=0) / qmax).astype(np.float32)
            wq = np.clip(np.round(w / scale), -qmax, qmax).astype(np.int8)
            node = helper.make_node(
                "DynamicQuantizeMatMul", ["X", "Wq", "S", "Z"], ["Y"], domain="com.microsoft"
            )
            inits = [
                numpy_helper.from_array(wq, "Wq"),
                numpy_helper.from_array(scale, "S"),
                numpy_helper.from_array(np.zeros(n, np.int8), "Z"),
            ]
            q_s, out = seconds(session([node], inits, m, k, args.threads), x, args.repeats)
            error = float(np.abs(out - reference).max() / np.abs(reference).max())
            result[qmax] = (q_s, error)
        total_fp += fp_s
        total_q += result[63][0]
        print(
            f"| {name} [{k}x{n}] | {flop / fp_s / 1e9:.0f} | {flop / result[63][0] / 1e9:.0f} "
            f"| {flop / result[127][0] / 1e9:.0f} | {fp_s / result[63][0]:.2f}x "
            f"| {result[63][1]:.3f} / {result[127][1]:.3f} |"
        )
    print(f"| one layer's dense products | | | | {total_fp / total_q:.2f}x | |")


if __name__ == "__main__":
    main()

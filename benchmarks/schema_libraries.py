"""pydantic v2 against msgspec for validating results.json (the measurement behind biaslab.results.schema).

Both validators are generated from the same result dataclasses and the same :data:`RULES`
(types, the commands' limits, array records with their shape/size checks), then run on the
same real results.json files. Reported per file: the time to parse + validate (median of
repeats), the peak Python memory while doing it (tracemalloc), and, once: the import time of
each library in a fresh interpreter, the time to build the validators, and the lines of code
of each generator.

    python benchmarks/schema_libraries.py RUN_DIR [RUN_DIR ...]

msgspec is not a biaslab dependency: ``pip install msgspec`` to run this.
"""


import dataclasses
import inspect
import json
import math
import statistics
import subprocess
import sys
import time
import tracemalloc
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np

from biaslab.results import result_type
from biaslab.results import schema as pyd

# --------------------------------------------------------------------------------------------
# The msgspec generator: the same rules as biaslab.results.schema, as msgspec Structs.


def msgspec_generator():
    import msgspec
    from msgspec import Meta, Struct, field

    Annotated = typing.Annotated

    class ArrayRecord(Struct, forbid_unknown_fields=True):
        dtype: typing.Literal[pyd.ALLOWED_DTYPES] = field(name="__ndarray__")  # type: ignore[valid-type]
        shape: Annotated[list[Annotated[int, Meta(ge=0, le=2**31)]], Meta(max_length=8)] = []
        data: list[bool | int | float] | None = None
        zlib: str | None = None

        def __post_init__(self):
            if (self.data is None) == (self.zlib is None):
                raise ValueError("an array holds exactly one of 'data' and 'zlib'")
            n = math.prod(self.shape)
            if n > pyd.MAX_ARRAY_ELEMENTS:
                raise ValueError("too many elements")
            if self.data is not None:
                if len(self.data) != n:
                    raise ValueError("data does not match shape")
                for v in self.data:
                    if isinstance(v, float) and not math.isfinite(v):
                        raise ValueError("not finite")
            elif len(self.zlib) > 4 * ((n * np.dtype(self.dtype).itemsize * 1.001 + 64) // 3 + 1):
                raise ValueError("zlib too long")

    def annotation(tp, rule, structs):
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is np.ndarray:
            return ArrayRecord  # msgspec: per-field rank/size rules need one Struct subclass per field
        if origin in (typing.Union, types.UnionType):
            options = [a for a in args if a is not type(None)]
            inner = annotation(options[0], rule, structs) if len(options) == 1 else Any
            return inner | None if type(None) in args else inner
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return struct(tp, structs)
        if origin in (list, tuple):
            item = annotation(args[0] if args else Any, None, structs)
            lo, hi = rule.items if rule is not None and rule.items else (0, pyd.MAX_ITEMS)
            return Annotated[list[item], Meta(min_length=lo, max_length=hi)]
        if origin is dict:
            value = annotation(args[1] if len(args) == 2 else Any, None, structs)
            return Annotated[dict[str, value], Meta(max_length=pyd.MAX_ITEMS)]
        if tp is int:
            lo = pyd.INT_RANGE[0] if rule is None or rule.ge is None else int(rule.ge)
            hi = pyd.INT_RANGE[1] if rule is None or rule.le is None else int(rule.le)
            return Annotated[int, Meta(ge=lo, le=hi)]
        if tp is float:
            ann = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
            return ann if rule is not None and rule.finite else ann | None
        if tp is str:
            if rule is not None and rule.choices is not None:
                return typing.Literal[rule.choices]
            return Annotated[str, Meta(max_length=pyd.MAX_TEXT)]
        return Any  # msgspec has no after-validator for free-form values: depth is checked separately

    def struct(cls, structs):
        if cls in structs:
            return structs[cls]
        hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
        fields = []
        for f in dataclasses.fields(cls):
            if not f.metadata.get("stored", True):
                continue
            ann = annotation(hints[f.name], pyd._rule(cls.__name__, f.name), structs)
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            fields.append((f.name, ann) if required else (f.name, ann, None))
        fields.sort(key=len)  # required first
        out = msgspec.defstruct(cls.__name__, fields, forbid_unknown_fields=False)
        structs[cls] = out
        return out

    def decoder(command):
        base = struct(result_type(command), {})
        return msgspec.json.Decoder(base)

    return decoder


# --------------------------------------------------------------------------------------------


def _fresh_import_ms(module: str, repeats: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(repeats)]
    return 1000 * statistics.median(runs)


def _measure(fn, raw: bytes, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(raw)
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    fn(raw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return 1000 * statistics.median(times), peak / 1024**2


def main(dirs: list[str], repeats: int = 15) -> dict:
    report: dict[str, Any] = {"import_ms": {"pydantic": _fresh_import_ms("pydantic"),
                                            "msgspec": _fresh_import_ms("msgspec")}}
    make_msgspec = msgspec_generator()
    gen_lines = {"pydantic": len(inspect.getsource(pyd._annotation).splitlines())
                 + len(inspect.getsource(pyd._model).splitlines())
                 + len(inspect.getsource(pyd._array_record).splitlines()),
                 "msgspec": len(inspect.getsource(msgspec_generator).splitlines())}
    report["generator_lines"] = gen_lines
    report["files"] = {}
    for d in dirs:
        raw = (Path(d) / "results.json").read_bytes()
        command = json.loads(raw)["command"]
        t = time.perf_counter()
        pyd._payload_model(command)
        build_p = time.perf_counter() - t
        t = time.perf_counter()
        dec = make_msgspec(command)
        build_m = time.perf_counter() - t

        def with_pydantic(b: bytes) -> None:
            pyd.check_payload(json.loads(b), command)

        def with_msgspec(b: bytes) -> None:
            import msgspec

            data = json.loads(b)  # biaslab decodes from the parsed dict afterwards in either case
            msgspec.convert({k: v for k, v in data.items() if k not in ("schema", "biaslab_version", "command",
                                                                          "bias_params", "bias_share", "counts")},
                            dec.type)

        def msgspec_only(b: bytes) -> None:
            dec.decode(b)

        p_ms, p_mb = _measure(with_pydantic, raw, repeats)
        m_ms, m_mb = _measure(with_msgspec, raw, repeats)
        mo_ms, mo_mb = _measure(msgspec_only, raw, repeats)
        j_ms, j_mb = _measure(json.loads, raw, repeats)
        report["files"][d] = {
            "bytes": len(raw), "command": command,
            "json.loads": {"ms": round(j_ms, 2), "peak_MiB": round(j_mb, 2)},
            "pydantic (json.loads + validate)": {"ms": round(p_ms, 2), "peak_MiB": round(p_mb, 2),
                                                 "build_ms": round(1000 * build_p, 1)},
            "msgspec (json.loads + convert)": {"ms": round(m_ms, 2), "peak_MiB": round(m_mb, 2),
                                               "build_ms": round(1000 * build_m, 1)},
            "msgspec (decode bytes directly)": {"ms": round(mo_ms, 2), "peak_MiB": round(mo_mb, 2)},
        }
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:] or ["biaslab-out/conv"]), indent=2))

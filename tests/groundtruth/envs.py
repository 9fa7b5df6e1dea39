#!/usr/bin/env python3
"""Isolated virtual environments holding the real LLaMA-Factory, for ground-truth tests.

Standard library only.  Each "version set" below names one llamafactory release and the
transformers/datasets/accelerate/peft/trl releases it is run against.  ``ensure_env(name, root)``
builds ``root/<name>`` (a venv) unless it is already complete and returns its python.

Build steps, in order (the order matters: see the notes in VERSION_SETS):
  1. ``python3.11 -m venv``
  2. ``pip install torch==2.13.0``      (the CPU build; this machine serves it from a local file)
  3. ``pip install llamafactory==X --no-deps``
  4. ``pip install <pins> <runtime deps>`` under a constraints file holding ``torch==2.13.0``
     plus the set's lock (exact versions of every package of a verified build), so that
     nothing can replace the CPU torch or pull CUDA/nvidia packages.
  5. an empty stand-in package ``torchaudio/__init__.py`` in site-packages (LF >= 0.9.4 imports
     torchaudio at module level and never uses it for text).
  6. checks: no ``nvidia-*``/``triton`` distribution, torch is the ``+cpu`` build, and the smoke
     import ``from llamafactory.hparams import get_train_args`` /
     ``from llamafactory.train.tuner import run_exp`` succeeds under ``gt_environ``.
  7. the marker file ``.lf-lint-env-complete`` is written last.  It records a hash of the set's
     spec: a missing marker (interrupted build) or a changed spec makes the next call rebuild.

CLI::

    python tests/groundtruth/envs.py [--root DIR] [--force] [--no-lock] [--smoke-run] NAME... | all

prints the python path of each env, one per line (``--smoke-run`` also runs smoke_run.py in each
env and prints its JSON line to stderr).  Run code in an env with ``run_in_env`` or with the
environment from ``gt_environ`` (offline, CPU only, a per-env HF_DATASETS_CACHE, or the caller's
scratch folder: datasets 3.x cannot read caches written by 4.x).  Default root: ``$LF_LINT_GT_ROOT`` or
``~/.cache/lf-lint-groundtruth``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MARKER = ".lf-lint-env-complete"
BUILD_LOG = "build.log"
TORCH_PIN = "torch==2.13.0"

# What llamafactory needs at run time besides the pinned set.  Checked by tracing sys.modules
# through a real run_exp (smoke_run.py) in every set: matplotlib (LF imports extras/ploting when
# it is installed, and `plot_loss: true` calls check_version("matplotlib", mandatory=True) while
# parsing), omegaconf, pandas, scipy, protobuf, safetensors, pyyaml, packaging and (0.9.2/0.9.3,
# through trl 0.9.6) tyro are imported.  fire, einops, sentencepiece, tiktoken, fastapi, uvicorn
# and sse-starlette are not, but they are small and keep the availability checks of transformers
# and LF as in a real install, so they stay.  Left out: packages LF lists in its metadata but only
# imports behind an availability check or for other features (librosa, av, modelscope, torchdata,
# gradio, hf-transfer, torchvision) -- none is imported when training on text; torchaudio is
# replaced by the empty stand-in package.
_COMMON = [
    "omegaconf",
    "fire",
    "numpy",
    "pandas",
    "pyyaml",
    "safetensors",
    "scipy",
    "sentencepiece",
    "tiktoken",
    "protobuf",
    "pydantic",
    "einops",
    "tyro<0.9.0",
    "packaging",
    "matplotlib",
    "fastapi",
    "uvicorn",
    "sse-starlette",
]

# Exact versions of every unpinned distribution, read off verified builds (2026-11-28, PyPI as then).
# Used only as pip constraints: an entry whose package is not needed installs nothing.  Each set
# adds the few that differ between sets ("lock").  Build with --no-lock to let pip pick anew.
_LOCK_COMMON = [
    "aiohappyeyeballs==2.7.1",
    "aiohttp==3.14.5",
    "aiosignal==1.4.0",
    "annotated-doc==0.0.7",
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "attrs==26.1.0",
    "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3",
    "click==8.5.1",
    "contourpy==1.3.3",
    "cycler==0.12.1",
    "dill==0.3.8",
    "docstring_parser==0.18.0",
    "einops==0.8.2",
    "fastapi==0.165.0",
    "filelock==4.3.1",
    "fire==0.7.1",
    "fonttools==4.68.0",
    "frozenlist==1.8.0",
    "h11==0.16.0",
    "hf-xet==1.8.0",
    "httpcore==1.0.9",
    "httpx==0.28.1",
    "idna==3.20",
    "jinja2==3.1.6",
    "kiwisolver==1.5.1",
    "markdown-it-py==4.3.0",
    "markupsafe==3.0.4",
    "matplotlib==3.11.2",
    "mdurl==0.1.2",
    "mpmath==1.3.0",
    "multidict==7.2.1",
    "multiprocess==0.70.16",
    "networkx==3.6.1",
    "omegaconf==2.4.0",
    "opentelemetry-api==1.45.2",
    "packaging==26.4",
    "pillow==13.0.0",
    "propcache==0.5.4",
    "protobuf==7.36.2",
    "psutil==7.2.2",
    "pygments==2.21.0",
    "pyparsing==3.3.3",
    "python-dateutil==4.0.0",
    "pytz==2026.6",
    "pyyaml==6.0.4",
    "regex==2026.11.19",
    "requests==2.34.2",
    "rich==15.0.0",
    "safetensors==0.8.0",
    "scipy==1.17.1",
    "sentencepiece==0.2.3",
    "shellingham==1.5.4",
    "shtab==1.13.0",
    "sse-starlette==3.7.0",
    "starlette==1.10.0",
    "sympy==1.14.0",
    "termcolor==3.3.0",
    "tiktoken==0.14.0",
    "tqdm==4.70.1",
    "typer==0.29.2",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "tyro==0.8.14",
    "tzdata==2026.6",
    "urllib3==2.8.0",
    "uvicorn==0.54.0",
    "xxhash==4.1.0",
    "yarl==1.25.1",
]

# name -> spec.  "pins": the packages that define the set (exact versions); "extra": additional
# constraints that make the set work; "lock": exact versions of everything else, taken from a
# verified build (used as a pip constraints file, so it only fixes versions and adds nothing).
VERSION_SETS: dict[str, dict] = {
    "lf092-tf449": {
        "llamafactory": "0.9.2",
        "pins": {
            "transformers": "4.49.0",
            "tokenizers": "0.21.0",
            "datasets": "3.2.0",
            "accelerate": "1.2.1",
            "peft": "0.12.0",
            "trl": "0.9.6",
        },
        # LF 0.9.2 requires numpy<2; datasets 3.2.0 breaks on pyarrow>=18
        "extra": ["pyarrow<18", "numpy<2", "pandas<3"],
        "lock": _LOCK_COMMON
        + ["fsspec==2024.9.0", "huggingface_hub==0.36.2", "numpy==1.26.4", "pandas==2.3.3"]
        + ["pyarrow==17.0.0", "pydantic==2.14.4", "pydantic_core==2.50.5"],
    },
    "lf093-tf451": {
        "llamafactory": "0.9.3",
        # the newest releases that LF 0.9.3's metadata (and its check_dependencies) admits
        "pins": {
            "transformers": "4.51.3",
            "tokenizers": "0.21.1",
            "datasets": "3.6.0",
            "accelerate": "1.7.0",
            "peft": "0.15.2",
            "trl": "0.9.6",
        },
        # LF 0.9.3 requires numpy<2 and pydantic<=2.10.6; pyarrow>=21 refuses numpy 1.x at import
        "extra": ["numpy<2", "pandas<3", "pydantic<=2.10.6", "pyarrow<21"],
        "lock": _LOCK_COMMON
        + ["fsspec==2025.3.0", "huggingface_hub==0.36.2", "numpy==1.26.4", "pandas==2.3.3"]
        + ["pyarrow==20.0.0", "pydantic==2.10.6", "pydantic_core==2.27.2"],
    },
    "lf094-tf457": {
        "llamafactory": "0.9.4",
        "pins": {
            "transformers": "4.57.1",
            "tokenizers": "0.22.1",
            "datasets": "4.0.0",
            "accelerate": "1.11.0",
            "peft": "0.17.1",
            "trl": "0.24.0",
        },
        "extra": [],
        "lock": _LOCK_COMMON
        + ["fsspec==2025.3.0", "huggingface_hub==0.36.2", "numpy==2.4.6", "pandas==3.1.1"]
        + ["pyarrow==26.0.1", "pydantic==2.14.4", "pydantic_core==2.50.5"],
    },
    "lf095-tf457": {
        "llamafactory": "0.9.5",
        "pins": {
            "transformers": "4.57.1",
            "tokenizers": "0.22.1",
            "datasets": "4.0.0",
            "accelerate": "1.11.0",
            "peft": "0.18.1",
            "trl": "0.24.0",
        },
        "extra": [],
        "lock": _LOCK_COMMON
        + ["fsspec==2025.3.0", "huggingface_hub==0.36.2", "numpy==2.4.6", "pandas==3.1.1"]
        + ["pyarrow==26.0.1", "pydantic==2.14.4", "pydantic_core==2.50.5"],
    },
    "lf095-tf56": {
        "llamafactory": "0.9.5",
        "pins": {
            "transformers": "5.6.0",
            "tokenizers": "0.22.2",
            "datasets": "4.0.0",
            "accelerate": "1.11.0",
            "peft": "0.18.1",
            "trl": "0.24.0",
        },
        "extra": [],
        "lock": _LOCK_COMMON
        + ["fsspec==2025.3.0", "huggingface_hub==1.33.0", "numpy==2.4.6", "pandas==3.1.1"]
        + ["pyarrow==26.0.1", "pydantic==2.14.4", "pydantic_core==2.50.5"],
    },
}

# LLaMA-Factory 0.9.5's data pipeline and loader (unchanged on main at ff6d4d12e) under the transformers 5.8 Trainer,
# as main runs it; LF 0.9.5 itself checks transformers <= 5.6.0 (gt_environ sets DISABLE_VERSION_CHECK)
VERSION_SETS["lf095-tf58"] = dict(
    VERSION_SETS["lf095-tf56"], pins=dict(VERSION_SETS["lf095-tf56"]["pins"], transformers="5.8.0")
)

SMOKE_CODE = (
    "import time; t = time.time()\n"
    "from llamafactory.hparams import get_train_args\n"
    "from llamafactory.train.tuner import run_exp\n"
    "import llamafactory, transformers, torch\n"
    "print('SMOKE-OK', llamafactory.__version__, transformers.__version__, torch.__version__,"
    " round(time.time() - t, 1))\n"
)


def default_root() -> Path:
    env = os.environ.get("LF_LINT_GT_ROOT")
    return Path(env) if env else Path.home() / ".cache" / "lf-lint-groundtruth"


def env_python(name: str, root: Path | str) -> Path:
    return Path(root) / name / "bin" / "python"


def spec_hash(name: str) -> str:
    spec = dict(VERSION_SETS[name], common=_COMMON, torch=TORCH_PIN)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def gt_environ(name: str, root: Path | str, base: dict | None = None, scratch: Path | None = None) -> dict:
    """Environment variables to run an env's python with: offline, CPU only, own datasets cache.

    The cache is ``scratch``'s when given (a test's tmp_path: every probe writes its datasets under a new path, so a
    shared cache only grows, by gigabytes over a few CI runs), else the env's own."""
    env = dict(os.environ if base is None else base)
    cache = Path(scratch) if scratch is not None else Path(root) / name / "hf-cache"
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        DISABLE_VERSION_CHECK="1",
        CUDA_VISIBLE_DEVICES="",
        HF_DATASETS_CACHE=str(cache / "datasets"),
        TOKENIZERS_PARALLELISM="false",
    )
    env.pop("USE_MODELSCOPE_HUB", None)
    env.pop("USE_OPENMIND_HUB", None)
    return env


def is_complete(name: str, root: Path | str) -> bool:
    marker = Path(root) / name / MARKER
    if not marker.is_file() or not env_python(name, root).exists():
        return False
    try:
        return json.loads(marker.read_text()).get("spec_hash") == spec_hash(name)
    except (OSError, ValueError):
        return False


def _base_python() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if not found:
        raise RuntimeError("Python 3.11 is needed (torch 2.13.0's CPU wheel and LF >= 0.9.4 want it)")
    return found


class BuildError(RuntimeError):
    pass


def _run(cmd: list, log, env: dict | None = None) -> str:
    log.write(f"\n$ {' '.join(map(str, cmd))}\n")
    log.flush()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log.write(proc.stdout)
    log.flush()
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise BuildError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{tail}")
    return proc.stdout


def _pip(py: Path, args: list, log) -> str:
    cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    if Path("/opt/wheels").is_dir():
        cmd += ["--find-links", "/opt/wheels"]  # where this machine keeps torch's CPU build
    env = dict(os.environ)
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    return _run(cmd + args, log, env=env)


def _requirements(name: str) -> list[str]:
    spec = VERSION_SETS[name]
    reqs = [f"{pkg}=={ver}" for pkg, ver in spec["pins"].items()]
    reqs += list(spec.get("extra", [])) + list(spec.get("extras_only", []))
    reqs += [r for r in _COMMON if r.split("<")[0].split("=")[0] not in {x.split("<")[0].split("=")[0] for x in reqs}]
    return reqs


def _check_distributions(name: str, py: Path, log) -> dict:
    out = _run([str(py), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"], log)
    dists = {d["name"].lower(): d["version"] for d in json.loads(out)}
    bad = sorted(n for n in dists if n.startswith("nvidia-") or n in ("triton", "pytorch-triton"))
    if bad:
        raise BuildError(f"GPU packages got installed: {bad}")
    torch_v = dists.get("torch", "")
    if not torch_v.startswith("2.13.0") or "+cpu" not in torch_v:
        raise BuildError(f"torch is {torch_v!r}, expected the 2.13.0+cpu build")
    for pkg, ver in VERSION_SETS[name]["pins"].items():
        if dists.get(pkg.lower()) != ver:
            raise BuildError(f"{pkg} is {dists.get(pkg.lower())!r}, expected {ver}")
    return dists


def smoke(name: str, root: Path | str) -> str:
    py = env_python(name, root)
    proc = subprocess.run(
        [str(py), "-c", SMOKE_CODE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=gt_environ(name, root),
    )
    if proc.returncode != 0 or "SMOKE-OK" not in proc.stdout:
        raise BuildError(f"smoke import failed in {name}:\n" + "\n".join(proc.stdout.splitlines()[-30:]))
    return [line for line in proc.stdout.splitlines() if line.startswith("SMOKE-OK")][-1]


def build(name: str, root: Path | str, use_lock: bool = True) -> Path:
    spec = VERSION_SETS[name]
    root = Path(root)
    target = root / name
    if target.exists():
        shutil.rmtree(target)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    subprocess.run([_base_python(), "-m", "venv", str(target)], check=True)
    py = env_python(name, root)
    with open(target / BUILD_LOG, "w") as log:
        constraints = target / "constraints.txt"
        lines = [TORCH_PIN]
        if use_lock:
            pinned = {p.lower() for p in spec["pins"]} | {"torch"}
            lines += [c for c in spec.get("lock", []) if c.split("==")[0].lower() not in pinned]
        constraints.write_text("\n".join(lines) + "\n")
        _pip(py, [TORCH_PIN], log)
        _pip(py, ["--no-deps", f"llamafactory=={spec['llamafactory']}"], log)
        _pip(py, ["-c", str(constraints)] + _requirements(name), log)
        purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], log).strip()
        stub = Path(purelib) / "torchaudio"
        if not (stub / "__init__.py").exists():
            stub.mkdir(exist_ok=True)
            (stub / "__init__.py").write_text(
                '"""Empty stand-in for torchaudio (lf-lint ground-truth env): LLaMA-Factory imports it\n'
                'at module level but only uses it for audio inputs."""\n'
            )
        dists = _check_distributions(name, py, log)
        line = smoke(name, root)
        log.write(line + "\n")
    seconds = round(time.time() - t0, 1)
    (target / MARKER).write_text(
        json.dumps(
            {
                "name": name,
                "spec_hash": spec_hash(name),
                "build_seconds": seconds,
                "locked": use_lock,
                "smoke": line,
                "distributions": dists,
            },
            indent=1,
            sort_keys=True,
        )
    )
    return py


def ensure_env(name: str, root: Path | str | None = None, *, force: bool = False, use_lock: bool = True) -> Path:
    """Return the python of venv ``root/name``, building it first if it is not complete."""
    if name not in VERSION_SETS:
        raise KeyError(f"unknown version set {name!r}; known: {', '.join(VERSION_SETS)}")
    root = Path(root) if root is not None else default_root()
    if not force and is_complete(name, root):
        return env_python(name, root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per env; others wait, then reuse its result
        if not force and is_complete(name, root):
            return env_python(name, root)
        return build(name, root, use_lock=use_lock)


# DeepSpeed for the ZeRO memory probe (tests/groundtruth/deepspeed_probe.py): the newest release LLaMA-Factory 0.9.3+
# accepts, and the small packages it needs beyond an env's own, installed beside the env (--target) so the env
# itself, and its spec hash, stay as they are. No kernel is compiled: the probe runs with DS_ACCELERATOR=cpu.
DEEPSPEED = ["deepspeed==0.16.9", "einops", "hjson", "msgpack", "ninja", "py-cpuinfo"]


def ensure_deepspeed(name: str, root: Path | str | None = None) -> Path:
    """A folder to put on PYTHONPATH, beside env ``name``, holding DeepSpeed (installed on first use)."""
    root = Path(root or default_root())
    python = ensure_env(name, root)
    folder = root / f"{name}-deepspeed"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        with open(root / f"{name}-deepspeed.log", "w") as log:
            _pip(python, ["--no-deps", "--target", str(folder)] + DEEPSPEED, log)
        done.write_text(" ".join(DEEPSPEED))
    return folder


def run_in_env(name: str, root: Path | str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``<env python> *argv`` under gt_environ (kwargs go to subprocess.run)."""
    kwargs.setdefault("env", gt_environ(name, root))
    return subprocess.run([str(env_python(name, root)), *argv], **kwargs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--root",
        type=Path,
        default=None,
        help="where the venvs live (default: $LF_LINT_GT_ROOT or ~/.cache/lf-lint-groundtruth)",
    )
    ap.add_argument("--force", action="store_true", help="rebuild even if complete")
    ap.add_argument("--no-lock", action="store_true", help="ignore the lock: let pip pick unpinned versions")
    ap.add_argument("--freeze", action="store_true", help="print each env's lock (pip freeze less the pins) as JSON")
    ap.add_argument("--smoke-run", action="store_true", help="also run smoke_run.py in each env (JSON to stderr)")
    ap.add_argument("names", nargs="+", metavar="NAME", help=f"version sets, or 'all': {', '.join(VERSION_SETS)}")
    a = ap.parse_args(argv)
    names = list(VERSION_SETS) if a.names == ["all"] else a.names
    root = a.root if a.root is not None else default_root()
    status = 0
    for n in names:
        try:
            py = ensure_env(n, root, force=a.force, use_lock=not a.no_lock)
        except (BuildError, KeyError, subprocess.CalledProcessError, RuntimeError) as e:
            print(f"{n}: FAILED: {e}", file=sys.stderr)
            status = 1
            continue
        print(py, flush=True)
        if a.smoke_run:
            t = time.time()
            proc = run_in_env(
                n,
                root,
                [str(Path(__file__).with_name("smoke_run.py"))],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-3000:]
            print(
                f"{n}: smoke_run rc={proc.returncode} wall={time.time() - t:.1f}s {line}", file=sys.stderr, flush=True
            )
            status = status or proc.returncode
        if a.freeze:
            dists = json.loads((root / n / MARKER).read_text())["distributions"]
            skip = {p.lower() for p in VERSION_SETS[n]["pins"]} | {"pip", "setuptools", "llamafactory", "torch"}
            print(json.dumps([f"{k}=={v}" for k, v in sorted(dists.items()) if k not in skip]), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

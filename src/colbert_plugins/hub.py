"""Finding a model's files: a local directory, or a Hugging Face repo id via ``huggingface_hub``.

Only the files a ColBERT ONNX model needs are fetched: the tokenizer and configuration files,
the ONNX graph and its external-data file. ``HF_HUB_OFFLINE=1`` and the local cache are
honoured by ``huggingface_hub`` itself; nothing here touches the network when the files are
cached and offline mode is on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentTypeError, ModelFilesError, ModelNotFoundError
from .registry import KnownModel, known_model

__all__ = ["INT8_FILE", "ModelFiles", "resolve_model_files"]

logger = logging.getLogger(__name__)

#: Where an ONNX graph is looked for, in order, when neither model_file nor the registry says.
ONNX_CANDIDATES = ("model.onnx", "onnx/model.onnx", "vespa_colbert.onnx")
#: Optional JSON files read for configuration.
CONFIG_FILES = (
    "config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "onnx_config.json",
)
TOKENIZER_FILE = "tokenizer.json"
#: Seconds the hub's TCP handshake may take before the hub counts as unreachable, so that a
#: machine without network fails (or uses its cache) at once instead of after
#: huggingface_hub's five retries (about 25 s).
HUB_PROBE_TIMEOUT_S = 3.0
_PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)
#: An int8 graph shipped beside the float32 one (``pylate-onnx-export --quantize`` writes it);
#: ``quantize="int8"`` runs it instead of making one with our recipe.
INT8_FILE = "model_int8.onnx"


@dataclass(frozen=True)
class ModelFiles:
    """The resolved files of one model."""

    name: str
    directory: Path
    onnx_path: Path
    tokenizer_path: Path
    json_files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    known: KnownModel | None = None
    revision: str | None = None
    int8_path: Path | None = None

    def json(self, filename: str) -> Mapping[str, Any]:
        """A parsed optional JSON file ({} when absent)."""
        return self.json_files.get(filename, {})


def resolve_model_files(
    name_or_path: str | os.PathLike[str],
    *,
    model_file: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    int8: bool = False,
) -> ModelFiles:
    """Locate (and download if needed) the files of a model directory or hub repo.

    With ``int8``, a shipped int8 graph (``model_int8.onnx`` beside the graph) is looked for
    too and, when there is one, recorded as ``int8_path``.
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise InvalidArgumentTypeError(
            f"name_or_path must be a directory path or a Hugging Face repo id, got "
            f"{type(name_or_path).__name__}"
        )
    if model_file is not None and not isinstance(model_file, str):
        raise InvalidArgumentTypeError(
            "model_file must be a relative path string such as 'model.onnx'"
        )
    path = Path(name_or_path).expanduser()
    name = str(name_or_path)
    if path.is_dir():
        return _from_directory(
            path, name, model_file=model_file, known=known_model(name), int8=int8
        )
    if path.exists():
        raise ModelFilesError(
            f"{path} is a file; pass the directory that holds the model (and model_file="
            f"{path.name!r} to choose this graph)"
        )
    if _looks_like_path(name):
        raise ModelNotFoundError(
            f"model directory {path} does not exist. Pass an existing directory holding "
            "tokenizer.json and an ONNX graph, or a Hugging Face repo id such as "
            "'answerdotai/answerai-colbert-small-v1'."
        )
    return _from_hub(
        name,
        model_file=model_file,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        int8=int8,
    )


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith((".", "/", "~", "\\"))
        or name.count("/") != 1
        or (os.sep != "/" and os.sep in name)
    )


def _read_json_files(directory: Path) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for filename in CONFIG_FILES:
        path = directory / filename
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelFilesError(f"{path} is not valid JSON: {exc}") from exc
        if isinstance(value, dict):
            found[filename] = value
    return found


def _from_directory(
    directory: Path, name: str, *, model_file: str | None, known: KnownModel | None, int8: bool
) -> ModelFiles:
    if model_file is not None:
        onnx_path = directory / model_file
        if not onnx_path.is_file():
            raise ModelFilesError(f"model_file {model_file!r} not found in {directory}")
    else:
        candidates = ([known.model_file] if known else []) + list(ONNX_CANDIDATES)
        found = [directory / c for c in candidates if (directory / c).is_file()]
        if not found:
            found = sorted(directory.glob("*.onnx")) + sorted(directory.glob("onnx/*.onnx"))
        if not found:
            raise ModelFilesError(
                f"no ONNX graph in {directory}: looked for {', '.join(candidates)} and any "
                "*.onnx. Export the model to ONNX, or pass model_file='path/inside/dir.onnx'."
            )
        onnx_path = found[0]
    tokenizer_path = directory / TOKENIZER_FILE
    if not tokenizer_path.is_file():
        raise ModelFilesError(
            f"no {TOKENIZER_FILE} in {directory}. ColBERT needs the Hugging Face fast-tokenizer "
            "file; save it with tokenizer.save_pretrained(directory) from the original model."
        )
    shipped = onnx_path.parent / INT8_FILE
    return ModelFiles(
        name=name,
        directory=directory,
        onnx_path=onnx_path,
        tokenizer_path=tokenizer_path,
        json_files=_read_json_files(directory),
        known=known,
        int8_path=shipped if int8 and shipped.is_file() and shipped != onnx_path else None,
    )


def _from_hub(
    repo_id: str,
    *,
    model_file: str | None,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool | None,
    int8: bool,
) -> ModelFiles:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    known = known_model(repo_id)
    offline = _hub_offline() if local_files_only is None else bool(local_files_only)
    # HF_HUB_OFFLINE: huggingface_hub itself never touches the network, nothing to probe.
    unreachable = None if offline or _hub_offline() else _hub_unreachable()
    if unreachable is not None:
        logger.warning("%s; using the local Hugging Face cache only", unreachable)
        offline = True

    def fetch(filename: str) -> Path | None:
        try:
            return Path(
                hf_hub_download(
                    repo_id,
                    filename,
                    revision=revision,
                    cache_dir=None if cache_dir is None else Path(cache_dir),
                    local_files_only=offline,
                )
            )
        except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
            raise ModelNotFoundError(
                f"{repo_id!r}{f' at revision {revision!r}' if revision else ''} was not found "
                f"on the Hugging Face hub ({type(exc).__name__}). Check the repo id and "
                "revision, or pass a local directory."
            ) from exc
        except LocalEntryNotFoundError:
            return None
        except EntryNotFoundError:
            return None
        except OSError as exc:  # connection errors and HTTP errors derive from OSError
            raise ModelNotFoundError(
                f"could not download {filename} of {repo_id!r}: {exc}"
            ) from exc

    tokenizer = fetch(TOKENIZER_FILE)
    if tokenizer is None:
        raise ModelNotFoundError(_not_available(repo_id, revision, cache_dir, offline, unreachable))
    candidates = [model_file] if model_file else ([known.model_file] if known else [])
    candidates += [] if model_file else [c for c in ONNX_CANDIDATES if c not in candidates]
    onnx_path = None
    for candidate in candidates:
        onnx_path = fetch(candidate)
        if onnx_path is not None:
            break
    if onnx_path is None:
        raise ModelFilesError(
            f"no ONNX graph found for {repo_id!r}: tried {', '.join(candidates)} (in the cache"
            f"{'' if offline or _hub_offline() else ' and on the hub'}). Pass model_file= "
            "with the graph's path inside the repo."
        )
    onnx_name = onnx_path.relative_to(tokenizer.parent).as_posix()
    extras = list(known.additional_files if known and onnx_name == known.model_file else ())
    extras.append(onnx_name + "_data")
    for filename in dict.fromkeys([*CONFIG_FILES, *extras]):
        fetch(filename)
    int8_path = None
    if int8 and Path(onnx_name).name != INT8_FILE:
        int8_path = fetch((Path(onnx_name).parent / INT8_FILE).as_posix())
    return ModelFiles(
        name=repo_id,
        directory=tokenizer.parent,
        onnx_path=onnx_path,
        tokenizer_path=tokenizer,
        json_files=_read_json_files(tokenizer.parent),
        known=known,
        revision=revision,
        int8_path=int8_path,
    )


def _hub_unreachable() -> str | None:
    """Why the hub cannot be reached from here (name resolution or TCP connection failed
    within :data:`HUB_PROBE_TIMEOUT_S`), or None when it can be, or when a proxy is
    configured (the proxy, not this machine, connects to the hub)."""
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return None
    from huggingface_hub import constants

    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    host = endpoint.hostname
    if not host:
        return None
    try:
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        with socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S):
            pass
    except ValueError:  # a malformed port in HF_ENDPOINT: let huggingface_hub report it
        return None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"the Hugging Face hub ({host}:{port}) could not be reached: {reason}"
    return None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _not_available(
    repo_id: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    offline: bool,
    unreachable: str | None = None,
) -> str:
    where = f"cache_dir={cache_dir!s}" if cache_dir else "the default Hugging Face cache"
    why = (
        unreachable
        if unreachable
        else "HF_HUB_OFFLINE is set"
        if _hub_offline()
        else "local_files_only=True"
        if offline
        else "the hub could not be reached"
    )
    rev = f" at revision {revision!r}" if revision else ""
    return (
        f"model {repo_id!r}{rev} is not in {where} and {why}. Download it once with network "
        f"access (`colbert-plugins download {repo_id}`), or pass a local model directory."
    )

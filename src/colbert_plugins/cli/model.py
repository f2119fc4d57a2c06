"""``colbert-plugins download`` and ``info``: a model's files and resolved settings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..files import sha256
from .common import MODEL_HELP, Parents, command, load_model, note, size


def add_parser(sub: Any, parents: Parents) -> None:
    """Register ``download`` and ``info`` on the main parser's subcommands."""
    p = command(
        sub,
        "download",
        _cmd_download,
        [parents.quiet],
        "fetch a model's files into the Hugging Face cache",
        "Fetch the files a ColBERT ONNX model needs into the Hugging Face cache.",
        model=False,
    )
    p.add_argument("model", metavar="MODEL", help="Hugging Face repo id")
    p.add_argument("--revision", help="hub branch, tag or commit")
    p.add_argument("--cache-dir", help="Hugging Face cache directory")
    p.add_argument("--model-file", help="the ONNX graph's path inside the repo")

    p = command(
        sub,
        "info",
        _cmd_info,
        [parents.loading, parents.quiet],
        "show a model's resolved configuration and files",
        "Show the resolved ColBERT settings, the graph and the files of a model.",
        model=False,
    )
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="JSON output")


def _cmd_download(args: argparse.Namespace) -> int:
    from ..errors import ModelNotFoundError
    from ..hub import _hub_offline, resolve_model_files

    try:
        files = resolve_model_files(
            args.model,
            model_file=args.model_file,
            revision=args.revision,
            cache_dir=args.cache_dir,
            local_files_only=False,
        )
    except ModelNotFoundError as exc:
        if not _hub_offline():
            raise
        where = args.cache_dir or "the default Hugging Face cache"
        raise ModelNotFoundError(
            f"cannot download {args.model!r}: HF_HUB_OFFLINE is set and the model is not in "
            f"{where}; unset HF_HUB_OFFLINE on a machine that reaches the hub and run again"
        ) from exc
    if not args.quiet:
        what = "local model directory" if Path(args.model).expanduser().is_dir() else "model"
        note(f"{what} {files.name} is ready in:")
    print(files.directory)
    if not args.quiet:
        for path in _model_paths(files):
            note(f"  {path.relative_to(files.directory).as_posix()}  {size(path.stat().st_size)}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    model = load_model(args, cache=False)
    info = _model_info(model)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    lines = [
        f"model            {info['name']}",
        f"directory        {info['directory']}",
        f"dim              {info['dim']}",
        f"family           {info['config']['family']} ({_FAMILY_NOTE[info['config']['family']]})",
        f"query marker     {_token_label(info['tokens']['query_marker'])}",
        f"document marker  {_token_label(info['tokens']['document_marker'])}",
        f"mask / pad       {_token_label(info['tokens']['mask'])} / "
        f"{_token_label(info['tokens']['pad'])}",
        f"skiplist ids     {len(info['tokens']['skiplist'])} tokens",
    ]
    if info["windows"]:
        windows = info["windows"]
        lines.append(f"windows          {windows['length']} tokens, stride {windows['stride']}")
    lines.append("settings (value, and the file or rule it came from)")
    for name, value in info["config"].items():
        shown = f"{len(value)} strings" if name == "skiplist" else json.dumps(value)
        lines.append(f"  {name:<22} {shown:<12} {info['sources'].get(name, 'default')}")
    if info["prompts"]:
        lines.append(
            "prompts          " + ", ".join(f"{k}={v!r}" for k, v in info["prompts"].items())
        )
    lines += [
        "graph inputs     "
        + ", ".join(f"{i['name']} {i['type']} {i['shape']}" for i in info["graph"]["inputs"]),
        "graph outputs    "
        + ", ".join(f"{o['name']} {o['type']} {o['shape']}" for o in info["graph"]["outputs"]),
        f"graph running    {info['graph']['path']} ({', '.join(info['graph']['providers'])})",
        "files",
    ]
    lines += [f"  {f['path']}  {size(f['size'])}  sha256 {f['sha256']}" for f in info["files"]]
    lines += [f"warning: {w}" for w in info["warnings"]]
    print("\n".join(lines))
    return 0


_FAMILY_NOTE = {
    "fastembed": "fastembed's and colbert-ai's rules",
    "pylate": "PyLate's rules, read from its config",
}


def _model_paths(files: Any) -> list[Path]:
    """The files a model uses: the graph (and its external data), tokenizer, configuration."""
    from ..hub import CONFIG_FILES

    graph: Path = files.onnx_path
    paths = [graph, *sorted(graph.parent.glob(graph.name + "*data")), files.tokenizer_path]
    paths += [files.directory / f for f in CONFIG_FILES if (files.directory / f).is_file()]
    if files.int8_path is not None:
        paths.append(files.int8_path)
    return list(dict.fromkeys(paths))


def _model_info(model: Any) -> dict[str, Any]:
    tok = model.tokenizer
    ids = tok.ids
    settings = model.settings

    def token(token_id: int | None) -> dict[str, Any]:
        if token_id is None:  # a model without this marker
            return {"id": None, "token": None}
        return {"id": int(token_id), "token": tok.token_text(token_id)}

    def describe(values: Any) -> list[dict[str, Any]]:
        return [{"name": v.name, "type": v.type, "shape": list(v.shape)} for v in values]

    files = []
    for path in _model_paths(model.files):
        files.append(
            {
                "path": path.relative_to(model.files.directory).as_posix(),
                "size": path.stat().st_size,
                "sha256": sha256(path),
            }
        )
    session = model.encoder.session
    return {
        "name": model.name,
        "directory": str(model.files.directory.absolute()),
        "revision": model.files.revision,
        "dim": model.dim,
        "config": model.config.to_dict(),
        "tokens": {
            "query_marker": token(ids.query_marker),
            "document_marker": token(ids.document_marker),
            "mask": token(ids.mask),
            "pad": token(ids.pad),
            "skiplist": sorted(int(i) for i in ids.skiplist),
        },
        "sources": dict(settings.sources) if settings else {},
        "warnings": _warnings(model),
        "prompts": dict(settings.prompts) if settings else {},
        "windows": (
            {"length": tok.window_length, "stride": tok.window_stride}
            if model.config.long_documents == "windows"
            else None
        ),
        "graph": {
            "path": str(model.encoder.path),
            "inputs": describe(session.get_inputs()),
            "outputs": describe(session.get_outputs()),
            "providers": list(model.encoder.providers),
        },
        "files": files,
        "colbert_plugins_version": __version__,
    }


def _warnings(model: Any) -> list[str]:
    """The settings' warnings, and a token_type_ids declaration the graph contradicts."""
    settings = model.settings
    if settings is None:
        return []
    found = list(settings.warnings)
    declared, fed = settings.uses_token_type_ids, model.encoder.uses_token_type_ids
    if declared is not None and declared != fed:
        found.append(
            f"the config says uses_token_type_ids={str(declared).lower()} but the graph "
            f"{'declares' if fed else 'does not declare'} a token_type_ids input; the graph "
            f"decides: {'zeros are fed' if fed else 'none is fed'}"
        )
    return found


def _token_label(token: dict[str, Any]) -> str:
    return "none" if token["id"] is None else f"{token['id']} ({token['token']})"

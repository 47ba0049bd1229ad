"""Model bundles: a folder with `config.json` and `weights.safetensors`, nothing else needed.

Finding bundles by name or path and reading their config costs no torch (the CLI's `models`
command and the GUI's model menu use only that); saving and loading weights imports torch and
safetensors when called. Loading never unpickles: the config is JSON and the weights are
safetensors, so a bundle shared by a stranger can carry numbers, not code.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sampletool.errors import BundleError
from sampletool.fileio import atomic_write, atomic_write_text
from sampletool.paths import BUILTIN_MODELS_DIR, DEFAULT_MODEL_NAME, model_search_dirs

if TYPE_CHECKING:
    import torch

    from sampletool.features import AudioConfig

FORMAT = "sampletool-model"
FORMAT_VERSION = 2  # the newest format this version reads
# Format 2 adds tensors beside the module's (a bundle's labelled neighbours) and the config
# entry that describes them; a bundle without any is still written as format 1.
PLAIN_FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
# Held by the trainer while it writes a bundle that is also a training run's log folder.
TRAINING_LOCK = "run.lock"
# What a bundle may hold. A config with a thousand classes' confusion matrix is ~4 MB; nothing
# of ours nests deeper than a handful of levels; the weights of the largest preset are ~50 MB.
MAX_CONFIG_BYTES = 16 << 20
MAX_CONFIG_DEPTH = 64
MAX_WEIGHTS_BYTES = 4 << 30
MAX_WEIGHTS_HEADER_BYTES = 16 << 20
# safetensors dtype -> bytes per number
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
                "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8,
                "F64": 8}  # fmt: skip


@dataclass(frozen=True)
class BundleInfo:
    """What a bundle's config.json says, read without its weights.

    Attributes:
        name: the bundle's name (its metadata's, else its folder's).
        path: the bundle folder.
        kind: the model kind (a key of `sampletool.models.kinds`).
        class_names: the classifier's classes, in output order (empty: no classifier).
        description: one line from its metadata.
        doc: the whole parsed config.json.
    """

    name: str
    path: Path
    kind: str
    class_names: tuple[str, ...]
    description: str = ""
    doc: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def metadata(self) -> dict:
        return dict(self.doc.get("metadata", {}))


def read_bundle_config(directory: str | os.PathLike[str]) -> dict:
    """Read and check a bundle's config.json without touching the weights.

    Raises:
        BundleError: the folder is missing, is not a bundle, or is from a newer format.
    """
    d = Path(directory)
    if not d.exists():
        raise BundleError(f"model folder {d} does not exist")
    if not d.is_dir():
        archive = d.name.lower().endswith((".zip", ".tar", ".tar.gz", ".tgz"))
        hint = (": an exported model; unpack it, or import it in the app (Tools > Models > "
                "Import archive)") if archive else ""  # fmt: skip
        raise BundleError(f"{d} is a file, not a model folder{hint}")
    cfg_path = d / CONFIG_FILE
    try:
        st = cfg_path.stat()
    except OSError:
        st = None
    if st is None:
        others = sorted(p.name for p in d.iterdir())[:3] if os.access(d, os.R_OK) else []
        hint = f" (it holds {', '.join(others)}...)" if others else " (it is empty)"
        raise BundleError(
            f"{d} is not a Sample Tool model: no {CONFIG_FILE}{hint}; a model folder holds "
            f"{CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    doc = _read_json(cfg_path, st, MAX_CONFIG_BYTES, "a model config")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError(f"{cfg_path} is not a Sample Tool model config")
    version = doc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BundleError(f"{cfg_path} has no valid format_version")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{d} was made by a newer Sample Tool (bundle format {version}; this version reads "
            f"format {FORMAT_VERSION} and older): please update Sample Tool"
        )
    return doc


def _read_json(path: Path, st: os.stat_result, limit: int, what: str) -> Any:
    """A JSON file of at most `limit` bytes, nested at most MAX_CONFIG_DEPTH deep.

    Raises:
        BundleError: not a regular file (a link to a device or a pipe would be read without
            end), too large, not JSON, or nested too deeply.
    """
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(
            f"{path} is not a regular file (a device, a pipe or a folder); {what} is a JSON file"
        )
    if st.st_size > limit:
        raise BundleError(f"{path} is too large to be {what} ({st.st_size} bytes; at most {limit})")
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise BundleError(f"{path} cannot be read ({e.strerror or e})") from None
    if len(raw) > limit:  # it grew since stat
        raise BundleError(f"{path} is too large to be {what} (more than {limit} bytes)")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except RecursionError:
        doc = None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path} cannot be read as JSON ({e})") from None
    if doc is None or _depth_over(doc, MAX_CONFIG_DEPTH):
        raise BundleError(
            f"{path} is nested too deeply to be {what} (more than {MAX_CONFIG_DEPTH} levels of "
            "brackets)"
        )
    return doc


def _depth_over(doc: Any, limit: int) -> bool:
    """Whether lists and objects nest more than `limit` deep (walked without recursion)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def read_bundle(directory: str | os.PathLike[str]) -> BundleInfo:
    """A bundle's description from its config.json (see `read_bundle_config`)."""
    d = Path(directory)
    doc = read_bundle_config(d)
    model = doc.get("model")
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return BundleInfo(
        name=str(name) if name else d.resolve().name,
        path=d,
        kind=str(model.get("kind", "?")) if isinstance(model, dict) else "?",
        class_names=tuple(str(c) for c in doc.get("class_names", []) or []),
        description=str(meta.get("description", "")) if isinstance(meta, dict) else "",
        doc=doc,
    )


def scan_bundles(
    search_dirs: Iterable[Path] | None = None,
) -> tuple[list[BundleInfo], list[tuple[Path, str]]]:
    """The bundles in the search folders, and the folders that hold a config.json but are no
    usable bundle, each with the reason (folders without one are not models at all).

    Names that repeat keep the first one; "default" always names the built-in model, so a
    bundle elsewhere calling itself that is listed among the problems (it loads by its path).
    """
    found: dict[str, BundleInfo] = {}
    problems: list[tuple[Path, str]] = []
    builtin_default = BUILTIN_MODELS_DIR / DEFAULT_MODEL_NAME
    for root in search_dirs if search_dirs is not None else model_search_dirs():
        try:
            children = sorted(p for p in Path(root).iterdir() if p.is_dir())
        except OSError:
            continue
        for child in children:
            if not os.path.lexists(child / CONFIG_FILE):
                continue
            try:
                info = read_bundle(child)
            except BundleError as e:
                problems.append((child, str(e)))
                continue
            if info.name == DEFAULT_MODEL_NAME and child != builtin_default:
                why = (f"{child} calls itself {DEFAULT_MODEL_NAME!r}, the built-in model's "
                       "name: rename it (it loads by its path)")  # fmt: skip
                problems.append((child, why))
                continue
            found.setdefault(info.name, info)
    return list(found.values()), problems


def find_bundles(search_dirs: Iterable[Path] | None = None) -> list[BundleInfo]:
    """Every readable bundle in the search folders (see `scan_bundles`)."""
    return scan_bundles(search_dirs)[0]


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """A bundle folder from a path, an installed bundle's name, or None (or "default") for the
    built-in default model.

    Raises:
        BundleError: nothing by that path or name, or no default model is installed.
    """
    if model is None or str(model) == DEFAULT_MODEL_NAME:
        default = BUILTIN_MODELS_DIR / DEFAULT_MODEL_NAME
        if (default / CONFIG_FILE).is_file():
            return default
        raise BundleError(
            f"the built-in default model is missing ({default}); name one with --model DIR"
        )
    p = Path(model)
    if p.exists() or os.sep in str(model) or (os.altsep and os.altsep in str(model)):
        return p
    bundles = find_bundles()
    for info in bundles:
        if info.name == str(model):
            return info.path
    names = ", ".join(i.name for i in bundles) or "none installed"
    raise BundleError(f"no model folder or installed model named {model!r} (installed: {names})")


def model_id(info: BundleInfo) -> str:
    """Names a bundle's vectors in a library catalogue: the same bytes, the same id.

    A retrained or edited bundle gets a new id, so its vectors never mix with the old ones'.
    """
    digest = hashlib.sha1()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        digest.update((info.path / name).read_bytes())
    return f"{info.name[:24]}-{digest.hexdigest()[:12]}"


def save_bundle(
    directory: str | os.PathLike[str],
    model: torch.nn.Module,
    config: Any,
    audio: AudioConfig,
    class_names: Iterable[str] = (),
    metadata: dict | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    extra_config: dict | None = None,
) -> Path:
    """Write a bundle; each file is replaced atomically, so a crash never leaves half a file.

    Weights are written before the config, so a folder with a config always has weights that
    belong to a config at least as new. `extra_tensors` are stored beside the module's, and
    `extra_config` entries beside "model" (format 2; see `sampletool.models.neighbours`).
    """
    from safetensors.torch import save_file

    class_names = list(class_names)
    if len(class_names) != config.num_classes:
        raise ValueError(
            f"{len(class_names)} class names for a model with {config.num_classes} classes"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    extra = {k: v.detach().to("cpu").contiguous() for k, v in (extra_tensors or {}).items()}
    if set(extra) & set(tensors):
        raise ValueError("extra tensors may not take a module tensor's name")
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(tensors | extra, str(p)))
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION if extra or extra_config else PLAIN_FORMAT_VERSION,
        **(extra_config or {}),
        "model": config.to_dict(),
        "audio": audio.to_dict(),
        "class_names": class_names,
        "metadata": metadata or {},
    }
    atomic_write_text(directory / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")
    return directory


def read_weights_header(info: BundleInfo) -> dict[str, tuple[int, ...]]:
    """The tensors the bundle's weights file declares (name -> shape), from its header alone:
    nothing is loaded, so a header that claims terabytes costs nothing.

    Raises:
        BundleError: the weights are missing, not a safetensors file, damaged (the header
            disagrees with the file) or larger than MAX_WEIGHTS_BYTES.
    """
    weights = info.path / WEIGHTS_FILE
    try:
        st = weights.stat()
    except OSError:
        raise BundleError(f"{info.path} has a config but no {WEIGHTS_FILE}") from None
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{weights} is not a regular file (a device, a pipe or a folder)")

    def damaged(why: str) -> BundleError:
        return BundleError(f"{weights} is damaged or not a safetensors file ({why})")

    try:
        with open(weights, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise damaged("shorter than a header")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_WEIGHTS_HEADER_BYTES, st.st_size - 8):
                raise damaged(f"a header of {n} bytes")
            raw = f.read(n)
    except OSError as e:
        raise BundleError(f"{weights} cannot be read ({e.strerror or e})") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise damaged(f"its header is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise damaged("its header is not a table of tensors")
    shapes: dict[str, tuple[int, ...]] = {}
    total = 0
    for name, entry in doc.items():
        if name == "__metadata__":
            continue
        try:
            size = _DTYPE_BYTES[entry["dtype"]]
            shape = tuple(entry["shape"])
            begin, end = entry["data_offsets"]
            if not all(isinstance(x, int) and x >= 0 for x in (*shape, begin, end)):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise damaged(f"its header's entry for {name!r} makes no sense") from None
        count = 1
        for x in shape:
            count *= x
        if end - begin != count * size or end > st.st_size - 8 - n:
            raise damaged(f"{name} does not fit its place in the file")
        total += count * size
        shapes[name] = shape
    if total > MAX_WEIGHTS_BYTES:
        raise BundleError(
            f"{weights} is too large to be a model's weights ({total} bytes; at most "
            f"{MAX_WEIGHTS_BYTES})"
        )
    return shapes


def check_weights_fit(
    info: BundleInfo,
    declared: dict[str, tuple[int, ...]],
    expected: dict[str, tuple[int, ...]],
    extra: Iterable[str] = (),
) -> None:
    """Raise BundleError, in one sentence, when the weights' tensors (`declared`, from
    `read_weights_header`) are not the ones the config's model has (`expected`), beside the
    `extra` ones its config names (checked by their user)."""
    missing = [k for k in expected if k not in declared]
    unexpected = [k for k in declared if k not in expected and k not in set(extra)]
    wrong = [
        f"{k} is {list(declared[k])} but the config needs {list(v)}"
        for k, v in expected.items()
        if k in declared and tuple(declared[k]) != tuple(v)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        problems.append(f"{len(wrong)} of the wrong shape (e.g. {wrong[0]})")
    if problems:
        raise BundleError(
            f"the weights in {info.path} do not match its config: " + "; ".join(problems)
        )


def load_weights(
    info: BundleInfo, model: torch.nn.Module, extra: Iterable[str] = ()
) -> dict[str, torch.Tensor]:
    """Load the bundle's weights into `model` (built from its config), on the CPU; the header
    is checked against the model before any tensor is read. Returns those of the `extra`
    tensors (not the module's) that the file holds.

    Raises:
        BundleError: the weights are missing, damaged, do not match the config, or hold NaN
            or infinite numbers; one sentence says which.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    extra = tuple(extra)
    readable = _read_dtypes()
    declared = read_weights_header(info)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_weights_fit(info, declared, expected, extra)
    weights = info.path / WEIGHTS_FILE
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BundleError(f"{weights} is damaged or not a safetensors file ({e})") from None
    for name, tensor in state.items():
        if tensor.dtype not in readable:
            raise BundleError(
                f"the weights of model {info.name!r} ({info.path}) hold numbers of a type "
                f"Sample Tool does not read ({str(tensor.dtype).removeprefix('torch.')} in "
                f"{name})"
            )
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise BundleError(
                f"the weights of model {info.name!r} ({info.path}) hold NaN or infinite "
                f"numbers (in {name}): the model is damaged or its training diverged"
            )
    found = {k: state.pop(k) for k in extra if k in state}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:  # a tensor of a type the module's cannot take
        raise BundleError(f"the weights in {info.path} do not fit its model ({e})") from None
    return found


def _read_dtypes() -> tuple:
    import torch

    return (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.bool,
            torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)  # fmt: skip

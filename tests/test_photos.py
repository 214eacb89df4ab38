"""Photos as input: folders, glob patterns and single images, mixed with a video; one record per image;
every face on a photo classified without waiting for a track; broken and missing photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
from conftest import CliRunner, read_records


def test_photos_folders_patterns_and_files_mixed_with_video(
    run_cli: CliRunner, shared_dir: Path, sample_video: Path, tmp_path: Path
) -> None:
    images = shared_dir / "images"
    photos, shots = tmp_path / "photos", tmp_path / "shots"
    photos.mkdir()
    shots.mkdir()
    shutil.copy(images / "grace_hopper.bmp", photos)
    shutil.copy(images / "cat.bmp", photos)
    cv2.imwrite(str(photos / "parrot.png"), cv2.imread(str(images / "parrot.jpg")))
    (photos / "notes.txt").write_text("not a photo")
    shutil.copy(images / "face.jpg", shots / "a.jpg")
    shutil.copy(images / "hot_dog.jpg", shots / "b.jpg")
    events = tmp_path / "events.jsonl"
    result = run_cli(
        "run", photos, str(shots / "*.jpg"), images / "face.jpg", sample_video, "--events", events,
        "--classify", "faces", "--classifier-model", "mobilenet_v1", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = read_records(events)
    by_image = {record["image"]: record for record in frames if "image" in record}
    assert sorted(Path(name).name for name in by_image) == [
        "a.jpg", "b.jpg", "cat.bmp", "face.jpg", "grace_hopper.bmp", "parrot.png",
    ]  # fmt: skip
    assert {by_image[str(photos / "cat.bmp")]["source"], by_image[str(shots / "a.jpg")]["source"]} == {
        "photos",
        "shots",
    }
    hopper = by_image[str(photos / "grace_hopper.bmp")]
    assert (hopper["width"], hopper["height"]) == (512, 600) and len(hopper["faces"]) == 1
    assert by_image[str(photos / "cat.bmp")]["faces"] == []
    group = by_image[str(images / "face.jpg")]
    assert len(group["faces"]) >= 2
    for face in group["faces"] + hopper["faces"]:
        assert face["classification"]["model"] == "mobilenet_v1", "a photo's face needs no track"
        assert "track_id" not in face
    assert by_image[str(shots / "a.jpg")]["faces"] == group["faces"]
    video = [record for record in frames if record["source"] == "sample"]
    assert len(video) == 100 and "image" not in video[0]
    tracks = read_records(events, "new")
    assert tracks and all(event["source"] == "sample" for event in tracks), "photos start no tracks"


def test_broken_and_missing_photos_are_one_line_errors(
    run_cli: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(shared_dir / "images" / "grace_hopper.bmp", photos)
    data = (shared_dir / "images" / "face.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(data[: len(data) * 9 // 10])
    events = tmp_path / "events.jsonl"
    broken = run_cli("run", photos, "--events", events, "--no-progress")
    assert broken.returncode == 1
    assert "error: photos: 1 image(s) could not be read: cut.jpg" in broken.stderr
    assert [Path(record["image"]).name for record in read_records(events)] == ["grace_hopper.bmp"]
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run_cli("run", empty, str(tmp_path / "none" / "*.png"), "--no-progress")
    assert nothing.returncode == 1
    assert "no input could be opened" in nothing.stderr and "names no image" in nothing.stderr


def test_a_list_file_names_photos_in_its_order_and_numbers_them_by_place(
    run_cli: CliRunner, shared_dir: Path, tmp_path: Path
) -> None:
    images = shared_dir / "images"
    (tmp_path / "more").mkdir()
    shutil.copy(images / "parrot.jpg", tmp_path / "more" / "parrot.jpg")
    listing = tmp_path / "photos.txt"
    lines = [
        "# wanted, in this order",
        str(images / "grace_hopper.bmp"),
        "",
        "more/gone.jpg",
        " more/parrot.jpg ",
    ]
    listing.write_text("\n".join(lines) + "\n")
    events = tmp_path / "events.jsonl"
    result = run_cli("run", listing, "--events", events, "--no-progress")
    assert result.returncode == 1, "a listed photo is missing"
    assert "error: photos: 1 image(s) could not be read: gone.jpg" in result.stderr
    frames = [(Path(record["image"]).name, record["frame"]) for record in read_records(events)]
    assert frames == [("grace_hopper.bmp", 0), ("parrot.jpg", 2)], "a photo's number is its place in the list"
    listing.write_text(f"{images / 'face.jpg'}\nhttps://user:secret@example.com/a.jpg\n")
    refused = run_cli("run", listing, "--events", events, "--no-progress")
    assert refused.returncode != 0 and "secret" not in refused.stderr
    assert "line 2: https://***@example.com/a.jpg is a url" in refused.stderr.strip().splitlines()[-1]

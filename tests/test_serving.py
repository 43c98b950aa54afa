"""TF Serving: the exported SavedModel, its warm-up records, the gRPC and REST clients,
`diqa remote`, and Keras = SavedModel = saved_model_cli parity.

The clients run against in-process servers (tests/serving_fixtures.py) that execute
the loaded SavedModel; a real `tensorflow_model_server` is used when one is found.
"""

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_fixtures import ServedModel, grpc_server, rest_server
from tensorflow_serving.apis import prediction_log_pb2

from diqa_tf import cli
from diqa_tf.data.files import skimage_photos
from diqa_tf.export import saved_model
from diqa_tf.export.saved_model import export_saved_model
from diqa_tf.export.warmup import WARMUP_FILE
from diqa_tf.inference import Scorer
from diqa_tf.models import QualityModel
from diqa_tf.resources import load_model
from diqa_tf.serving import GrpcClient, RequestRejected, RestClient, ServerError

TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_quality_model_path):
    """The tiny model, exported once to diqa/1, loaded, and its Scorer."""
    model = load_model(tiny_quality_model_path, expected=QualityModel)
    path = export_saved_model(model, tmp_path_factory.mktemp("serving") / "diqa" / "1")
    return SimpleNamespace(model=model, path=path, server=ServedModel(path),
                           scorer=Scorer(model, batch_size=4))


@pytest.fixture
def server(served):
    served.server.reset()
    return served.server


def _encode(image, extension):
    if extension == ".png":
        return tf.io.encode_png(image).numpy()
    return tf.io.encode_jpeg(image, quality=90).numpy()


def _crop(photo, height, width, rng):
    top = rng.integers(0, photo.shape[0] - height + 1)
    left = rng.integers(0, photo.shape[1] - width + 1)
    return photo[top : top + height, left : left + width]


# Real photos (scikit-image's), crops of several sizes: (photo, height, width, format).
PHOTO_FILES = (
    ("astronaut", 48, 64, ".png"),
    ("coffee", 40, 56, ".jpg"),
    ("rocket", 40, 56, ".jpg"),
    ("chelsea", 33, 47, ".png"),
    ("camera", 64, 64, ".png"),  # grey
    ("coins", 16, 16, ".png"),  # the smallest size scored
)


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    """good/: real photo crops as PNG/JPEG; bad/: files a server must refuse."""
    folder = tmp_path_factory.mktemp("photos")
    photos, rng = dict(skimage_photos()), np.random.default_rng(3)
    good = []
    for i, (name, height, width, extension) in enumerate(PHOTO_FILES):
        crop = _crop(photos[name], height, width, rng)
        if name == "camera":
            crop = crop[..., :1]
        path = folder / "good" / f"{i}_{name}{extension}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(_encode(crop, extension))
        good.append(path)
    bad = folder / "bad"
    bad.mkdir()
    png = _encode(_crop(photos["astronaut"], 32, 32, rng), ".png")
    bad_files = {
        "not_image.png": b"this is text, not a picture\n",
        "tiny.png": _encode(_crop(photos["coffee"], 8, 12, rng), ".png"),
        "truncated.png": png[: len(png) // 2],
        "empty.jpg": b"",
    }
    for name, contents in bad_files.items():
        (bad / name).write_bytes(contents)
    return SimpleNamespace(good=good, bad={name: bad / name for name in bad_files})


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of `diqa ARGV`, run in this process."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _expected(served, paths):
    scores, errors = served.scorer.score_files(paths)
    assert not errors
    return np.array([scores[p] for p in paths])


# --- The SavedModel: warm-up records, atomic export, INVALID_ARGUMENT -----------------


def test_warmup_records_are_real_requests_that_the_signature_answers(served):
    path = served.path / "assets.extra" / WARMUP_FILE
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(str(path))]
    assert 1 <= len(logs) <= 10
    sizes, formats = set(), set()
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        contents = tf.make_ndarray(request.inputs["image_bytes"])
        served_scores = served.server.run("serving_default", {"image_bytes": contents})["score"]
        images = [tf.io.decode_image(c, channels=3, dtype=tf.float32).numpy() * 255
                  for c in contents]
        np.testing.assert_allclose(
            served_scores, served.scorer.score_arrays(images), **TOLERANCE
        )
        sizes |= {i.shape[:2] for i in images}
        formats |= {"png" if c.startswith(b"\x89PNG") else "jpeg" for c in contents}
    assert formats == {"png", "jpeg"} and len(sizes) >= 3
    assert max(len(tf.make_ndarray(log.predict_log.request.inputs["image_bytes"]))
               for log in logs) >= 2  # one request holds several images


def test_export_replaces_a_version_atomically(served, tmp_path, monkeypatch):
    target = tmp_path / "diqa" / "1"
    export_saved_model(served.model, target)
    before = (target / "saved_model.pb").read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(saved_model, "write_warmup_file", fail)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(served.model, target, overwrite=True)
    # The failed export left the old version whole and no temporary folder.
    assert (target / "saved_model.pb").read_bytes() == before
    assert (target / "assets.extra" / WARMUP_FILE).exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["1"]

    monkeypatch.undo()
    export_saved_model(served.model, target, overwrite=True)
    assert sorted(p.name for p in target.parent.iterdir()) == ["1"]
    assert (target / "assets.extra" / WARMUP_FILE).exists()


def test_export_without_the_serving_extra_says_what_to_install(
    monkeypatch, capsys, tmp_path, tiny_quality_model_path
):
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)  # as if not installed
    status, _, err = run_cli(capsys, "export", "--model", tiny_quality_model_path,
                             "--output", tmp_path / "diqa")
    assert status == 1
    assert err.strip() == (
        "diqa: error: TF Serving support needs tensorflow-serving-api: "
        "pip install diqa-tf[serving]"
    )
    assert not (tmp_path / "diqa" / "1").exists()


@pytest.mark.parametrize(
    "name, message",
    [
        ("not_image.png", "image 1 of the request is not a PNG, JPEG, BMP, GIF or WebP image"),
        ("empty.jpg", "image 1 of the request is not a PNG, JPEG, BMP, GIF or WebP image"),
        ("tiny.png", "image 1 of the request is 12x8; both sides must be at least 16 pixels"),
        ("truncated.png", "PNG"),
    ],
)
def test_bad_image_in_a_request_is_an_invalid_argument(served, photo_files, name, message):
    contents = [photo_files.good[0].read_bytes(), photo_files.bad[name].read_bytes()]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        served.server.loaded.signatures["serving_default"](image_bytes=tf.constant(contents))


def test_images_above_the_pixel_limit_are_refused_before_the_network(served, monkeypatch):
    # A 30x40 image is too large.
    monkeypatch.setattr(saved_model, "WHOLE_IMAGE_MAX_PIXELS", 30 * 40 - 1)
    serve_bytes, predict_image = saved_model.serving_functions(served.model)
    png = _encode(np.zeros((30, 40, 3), np.uint8), ".png")
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="image 0 of the request is 40x30, more than the 0 megapixels"):
        tf.function(serve_bytes)(tf.constant([png]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="`image` is 40x30, more than"):
        tf.function(predict_image)(tf.zeros([1, 30, 40, 3]))


def test_predict_image_takes_grey_images(served, textured_image):
    from diqa_tf import preprocessing

    grey = textured_image(24, 40)[None, ..., :1].astype(np.float32)
    out = served.server.loaded.signatures["predict_image"](image=tf.constant(grey))
    inputs = preprocessing.normalize(grey, served.model.preprocessing_config)
    expected = served.model(inputs, training=False)
    for key in ("score", "error_map", "quality_map"):
        np.testing.assert_allclose(out[key].numpy(), expected[key].numpy(), **TOLERANCE)


def test_predict_image_refuses_small_images_and_wrong_channels(served):
    predict = served.server.loaded.signatures["predict_image"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="`image` is 20x12; both sides"):
        predict(image=tf.zeros([1, 12, 20, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="1 or 3 channels, got 2"):
        predict(image=tf.zeros([1, 20, 20, 2]))


# --- (a) The exact TensorProto of the gRPC client, fed to the signature --------------


def test_grpc_request_tensor_gives_the_scorers_scores(served, photo_files):
    client = GrpcClient("127.0.0.1:1", model_name="diqa", version=1)
    request = client.request([p.read_bytes() for p in photo_files.good])
    assert request.model_spec.signature_name == "serving_default"
    assert request.model_spec.version.value == 1
    assert list(request.output_filter) == ["score"]
    decoded = tf.make_ndarray(request.inputs["image_bytes"])
    assert decoded.shape == (len(photo_files.good),)
    score = served.server.loaded.signatures["serving_default"](
        image_bytes=tf.constant(decoded))["score"].numpy()
    np.testing.assert_allclose(score, _expected(served, photo_files.good), **TOLERANCE)
    client.close()


# --- (b) gRPC client end to end against an in-process PredictionService --------------


def test_grpc_client_scores_files_in_bounded_batches(served, server, photo_files):
    bad = photo_files.bad
    paths = [*photo_files.good, bad["tiny.png"], bad["empty.jpg"], bad["truncated.png"]]
    with grpc_server(server) as address, GrpcClient(address, batch_size=4) as client:
        client.check_signature()
        scores, errors = client.score_files(paths)
    np.testing.assert_allclose([scores[p] for p in photo_files.good],
                               _expected(served, photo_files.good), **TOLERANCE)
    reasons = {Path(e.path).name: e.reason for e in errors}
    assert reasons.pop("truncated.png").startswith("the server cannot decode it (Invalid PNG")
    assert reasons == {
        "tiny.png": "image is 12x8; both sides must be at least 16 pixels",
        "empty.jpg": "empty file (0 bytes)",  # never sent
    }
    # 8 readable files in batches of 4: [4 good], then [2 good, tiny, truncated] is
    # refused and resent one file a request.
    assert server.calls == {"metadata": 1, "predict": 2 + 4}


def test_grpc_client_retries_while_unavailable(served, server, photo_files):
    server.reset(fail_first=2)
    with grpc_server(server) as address:
        client = GrpcClient(address, retries=2, backoff=0.01)
        scores = client.score_bytes([photo_files.good[0].read_bytes()])
        np.testing.assert_allclose(scores, _expected(served, photo_files.good[:1]), **TOLERANCE)
        assert server.calls["predict"] == 3

        server.reset(fail_first=5)
        with pytest.raises(ServerError, match=f"{address}: server unavailable after 3 tries"):
            client.score_bytes([photo_files.good[0].read_bytes()])
        client.close()


def test_grpc_client_names_a_missing_model_or_signature(server):
    with grpc_server(server) as address:
        with GrpcClient(address, signature="nope") as client:
            with pytest.raises(ServerError, match="has no signature 'nope'.*predict_image"):
                client.check_signature()
        with GrpcClient(address, signature="predict_image") as client:
            with pytest.raises(ServerError, match="needs 'image_bytes' -> 'score'"):
                client.check_signature()
        with GrpcClient(address, model_name="other", retries=0) as client:
            with pytest.raises(ServerError, match=f"{address}: NOT_FOUND"):
                client.check_signature()


def test_grpc_bad_image_is_invalid_argument_on_the_wire(server, photo_files):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc_server(server) as address, GrpcClient(address) as client:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(client._channel)
        request = client.request([photo_files.bad["not_image.png"].read_bytes()])
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "image 0 of the request is not a PNG, JPEG, BMP, GIF or WebP image" in caught.value.details()


def test_score_bytes_names_the_refused_image_by_its_place(server, photo_files):
    contents = [photo_files.good[0].read_bytes(), photo_files.bad["tiny.png"].read_bytes()]
    with grpc_server(server) as address, GrpcClient(address) as client:
        with pytest.raises(RequestRejected) as caught:
            client.score_bytes(contents)
    assert str(caught.value) == (
        "image 1 of the request is 12x8; both sides must be at least 16 pixels"
    )


# --- REST client against an in-process HTTP server ---------------------------------


def test_rest_client_scores_files_and_names_refused_ones(served, server, photo_files):
    paths = [*photo_files.good, photo_files.bad["not_image.png"]]
    server.reset(fail_first=1)  # one HTTP 503, retried
    with rest_server(server) as url:
        client = RestClient(url, version=1, batch_size=3, backoff=0.01)
        body = client.body([b"\x89PNG"])
        assert body == {"signature_name": "serving_default", "instances": [{"b64": "iVBORw=="}]}
        client.check_signature()
        scores, errors = client.score_files(paths)
    np.testing.assert_allclose([scores[p] for p in photo_files.good],
                               _expected(served, photo_files.good), **TOLERANCE)
    assert [(Path(e.path).name, e.reason) for e in errors] == [
        ("not_image.png", "image is not a PNG, JPEG, BMP, GIF or WebP image (TIFF, HEIC "
         "and AVIF are read by `diqa predict` only)")
    ]


def test_rest_client_names_a_missing_model(server):
    with rest_server(server) as url:
        with pytest.raises(ServerError, match="HTTP 404 for model 'other'"):
            RestClient(url, model_name="other").check_signature()


# --- `diqa remote` --------------------------------------------------------------------


def _csv_scores(text):
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["path", "score"]
    return [(path, float(score)) for path, score in rows[1:]]


def _same_rows(remote, local):
    assert [p for p, _ in remote] == [p for p, _ in local]
    np.testing.assert_allclose([s for _, s in remote], [s for _, s in local], atol=2e-4)


def test_remote_grpc_writes_what_predict_writes(served, server, photo_files, capsys,
                                                tiny_quality_model_path):
    folder = photo_files.good[0].parent
    status, local, _ = run_cli(capsys, "predict", folder, "--model", tiny_quality_model_path)
    assert status == 0
    with grpc_server(server) as address:
        status, out, err = run_cli(capsys, "remote", "--grpc", address, folder,
                                   "--batch-size", "2", "--timeout", "20")
    assert status == 0, err
    _same_rows(_csv_scores(out), _csv_scores(local))
    assert f"scored {len(photo_files.good)} images on {address}, 0 failed" in err


def test_remote_rest_json_and_bad_files(served, server, photo_files, capsys, tmp_path,
                                        tiny_quality_model_path):
    inputs = [photo_files.good[0], photo_files.bad["tiny.png"], tmp_path / "missing.png"]
    status, _, _ = run_cli(capsys, "predict", *inputs, "--model", tiny_quality_model_path,
                           "--output", tmp_path / "local.json")
    assert status == 1
    with rest_server(server) as url:
        status, out, err = run_cli(capsys, "remote", "--rest", url, *inputs,
                                   "--output", tmp_path / "remote.json")
    assert status == 1 and out == ""
    remote = json.loads((tmp_path / "remote.json").read_text())
    local = json.loads((tmp_path / "local.json").read_text())
    _same_rows([(r["path"], r["score"]) for r in remote], [(r["path"], r["score"]) for r in local])
    assert set(remote[0]) == {"path", "score"}
    errors = [line for line in err.splitlines() if line.startswith("diqa: error: ")]
    assert errors == [
        f"diqa: error: {tmp_path / 'missing.png'}: no such file or folder",
        f"diqa: error: {photo_files.bad['tiny.png']}: "
        "image is 12x8; both sides must be at least 16 pixels",
    ]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["--grpc", "--rest"])
def test_remote_unreachable_server_is_one_line(photo_files, capsys, kind):
    address = f"127.0.0.1:{_closed_port()}"
    target = address if kind == "--grpc" else f"http://{address}"
    status, out, err = run_cli(capsys, "remote", kind, target, photo_files.good[0],
                               "--retries", "0")
    assert status == 1 and out == ""
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"diqa: error: {target}: server unavailable after 1 try (")


def test_remote_needs_exactly_one_server(capsys, photo_files):
    with pytest.raises(SystemExit) as caught:
        cli.main(["remote", str(photo_files.good[0])])
    assert caught.value.code == 2
    assert "one of the arguments --grpc --rest is required" in capsys.readouterr().err


# --- (c) A real tensorflow_model_server, when there is one -----------------------------


def _model_server():
    return os.environ.get("TF_SERVING_BIN") or shutil.which("tensorflow_model_server")


@pytest.mark.skipif(
    not _model_server(),
    reason="no tensorflow_model_server: put it on PATH or set TF_SERVING_BIN "
    "(it has no pip or Debian package; the tensorflow/serving Docker image has it)",
)
def test_real_tensorflow_model_server(served, photo_files, tmp_path):
    grpc_port, rest_port = _closed_port(), _closed_port()
    log = open(tmp_path / "model_server.log", "w")
    process = subprocess.Popen(
        [_model_server(), f"--port={grpc_port}", f"--rest_api_port={rest_port}",
         "--model_name=diqa", f"--model_base_path={served.path.parent.resolve()}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        client = GrpcClient(f"127.0.0.1:{grpc_port}", retries=0, timeout=30)
        deadline = time.time() + 120
        while True:
            try:
                client.check_signature()
                break
            except ServerError:
                if time.time() > deadline or process.poll() is not None:
                    raise AssertionError((tmp_path / "model_server.log").read_text()) from None
                time.sleep(1)
        expected = _expected(served, photo_files.good)
        paths = [*photo_files.good, photo_files.bad["tiny.png"]]
        rest = RestClient(f"http://127.0.0.1:{rest_port}", timeout=30)
        for remote in (client, rest):
            scores, errors = remote.score_files(paths)
            np.testing.assert_allclose([scores[p] for p in photo_files.good], expected,
                                       **TOLERANCE)
            assert [e.reason for e in errors] == [
                "image is 12x8; both sides must be at least 16 pixels"
            ]
        client.close()
        assert "warmup" in (tmp_path / "model_server.log").read_text().lower()
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


# --- (d) Parity: Keras = reloaded SavedModel (both signatures) = saved_model_cli -------


def _saved_model_cli():
    path = Path(sys.executable).parent / "saved_model_cli"
    return str(path) if path.exists() else shutil.which("saved_model_cli")


def _cli_run(export_dir, signature, key, array, tmp_path):
    """Outputs of `saved_model_cli run` for one input array (saved as .npy)."""
    tool = _saved_model_cli()
    if tool is None:
        pytest.skip("saved_model_cli is not installed")
    npy, outdir = tmp_path / f"{signature}.npy", tmp_path / signature
    np.save(npy, array, allow_pickle=True)
    subprocess.run(
        [tool, "run", "--dir", str(export_dir), "--tag_set", "serve",
         "--signature_def", signature, "--inputs", f"{key}={npy}", "--outdir", str(outdir)],
        check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return {p.stem: np.load(p) for p in outdir.glob("*.npy")}


def test_keras_savedmodel_and_saved_model_cli_agree(served, tmp_path):
    photos, rng = dict(skimage_photos()), np.random.default_rng(7)
    sizes = [(16, 16), (33, 47), (64, 48), (80, 120)]
    images = [_crop(photos[name], h, w, rng)
              for name, (h, w) in zip(["chelsea", "coffee", "astronaut", "rocket"], sizes)]
    floats = [i.astype(np.float32) for i in images]
    keras_scores = served.scorer.score_arrays(floats)
    signatures = served.server.loaded.signatures

    pngs = np.array([_encode(i, ".png") for i in images], dtype=object)
    from_bytes = signatures["serving_default"](image_bytes=tf.constant(pngs))["score"].numpy()
    np.testing.assert_allclose(from_bytes, keras_scores, **TOLERANCE)
    cli_scores = _cli_run(served.path, "serving_default", "image_bytes", pngs, tmp_path)["score"]
    np.testing.assert_allclose(cli_scores, keras_scores, **TOLERANCE)

    for image, expected in zip(floats, keras_scores):
        out = signatures["predict_image"](image=tf.constant(image[None]))
        np.testing.assert_allclose(out["score"].numpy(), [expected], **TOLERANCE)
    batch = np.stack([floats[2], np.ascontiguousarray(floats[2][::-1])])
    keras_outputs = served.scorer.predict_batch(list(batch))
    cli_outputs = _cli_run(served.path, "predict_image", "image", batch, tmp_path)
    assert set(cli_outputs) == {"score", "error_map", "quality_map"}
    for key, value in cli_outputs.items():
        np.testing.assert_allclose(value, keras_outputs[key], **TOLERANCE)


def test_remote_without_the_serving_extra_says_what_to_install(monkeypatch, capsys, photo_files):
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)  # as if not installed
    status, _, err = run_cli(capsys, "remote", "--grpc", "localhost:8500", photo_files.good[0])
    assert status == 1
    assert err.strip() == (
        "diqa: error: TF Serving support needs tensorflow-serving-api: "
        "pip install diqa-tf[serving]"
    )


def test_serving_config_files_agree():
    """models.config parses as TF Serving's ModelServerConfig; compose mounts what it names."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    root = Path(__file__).resolve().parents[1]
    config = text_format.Parse(
        (root / "serving" / "models.config").read_text(),
        model_server_config_pb2.ModelServerConfig(),
    )
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path) == ("diqa", "/models/diqa")
    compose = (root / "serving" / "docker-compose.yml").read_text()
    assert "../saved_models/diqa_clive:/models/diqa:ro" in compose
    assert (root / "serving" / "../saved_models/diqa_clive/1/saved_model.pb").exists()
    readme = (root / "serving" / "README.md").read_text()
    assert "docker run --rm -p 8500:8500 -p 8501:8501" in readme

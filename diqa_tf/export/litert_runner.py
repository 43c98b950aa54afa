"""Running a converted .tflite DIQA model with the LiteRT interpreter (`ai-edge-litert`).

What a mobile app does, in Python: fit the image to the model's fixed input size
(`tflite.fit_to_input`), feed float32 RGB on 0-255, read `score` and `quality_map`.
"""

from pathlib import Path

import numpy as np

from diqa_tf.errors import DIQAError, ModelError
from diqa_tf.export import tflite


class TFLiteScorer:
    """Scores RGB 0-255 images of any size with a .tflite model from `diqa convert`.

    The interpreter's tensors are allocated once; each call copies one image in and
    the outputs out, as an app would.
    """

    def __init__(self, path, num_threads=2):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise DIQAError(
                "running a .tflite model needs LiteRT: pip install 'diqa-tf[litert]'"
            ) from None
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no such .tflite file")
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self.interpreter.allocate_tensors()  # before the runner: it holds tensor views
            runner = self.interpreter.get_signature_runner(tflite.SIGNATURE)
        except ValueError as e:  # not a flatbuffer, or no such signature
            reason = (str(e).strip().splitlines() or ["unreadable"])[0]
            raise ModelError(f"{path}: not a DIQA .tflite model ({reason})") from None
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        if set(inputs) != {"image"} or not set(tflite.OUTPUTS) <= set(outputs):
            raise ModelError(
                f"{path}: not a DIQA .tflite model (inputs {sorted(inputs)}, "
                f"outputs {sorted(outputs)})"
            )
        self._input = inputs["image"]["index"]
        self._outputs = {name: outputs[name]["index"] for name in tflite.OUTPUTS}
        self.input_size = tuple(int(n) for n in inputs["image"]["shape"][1:3])

    def predict(self, image):
        """{"score": float, "quality_map": [h, w, 1]} of one [H, W, C] 0-255 image.

        The image is fitted to the model's input size first (see `fit_to_input`).
        """
        return self.run(tflite.fit_to_input(image, self.input_size))

    def run(self, image):
        """The model alone on an image already of the input size, [H, W, 3] float32."""
        self.interpreter.set_tensor(self._input, image[np.newaxis].astype(np.float32))
        self.interpreter.invoke()
        score = self.interpreter.get_tensor(self._outputs["score"])
        quality_map = self.interpreter.get_tensor(self._outputs["quality_map"])
        return {"score": float(score[0]), "quality_map": quality_map[0]}

    def score_arrays(self, images):
        """Scores of a list of [H, W, C] 0-255 arrays, in order."""
        return np.array([self.predict(image)["score"] for image in images], np.float32)

"""TensorFlow.js models (``model.json`` + weight shards), run through LiteRT or TensorFlow.

``modeljson`` reads the files, ``weights`` decodes them as TF.js does, ``graph``/``layers`` rebuild the
model in TensorFlow, ``convert`` turns it into a cached ``.tflite`` file and ``loader`` picks the runtime.
Only ``graph``, ``layers`` and the conversion import TensorFlow; a cached model loads without it.
"""

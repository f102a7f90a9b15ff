"""dlib's networks on ONNX Runtime: read the ``.dat`` files, convert them once, run them.

Nothing here is imported by ``import faceindex``; ``onnx`` and ``onnxruntime`` are imported
inside the functions that need them.
"""

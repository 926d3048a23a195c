"""An independent KServe v2 gRPC client for TestPythonGRPCClient.

Debian's python3-grpcio and python3-protobuf, with message classes that
protoc --python_out generated from api/inferencepb/grpc_predict_v2.proto
into the folder given as argv[1]. The service is called through grpcio's
generic unary_unary (Debian's grpc-tools is too old for its protobuf).

Reads a JSON job on stdin:
  {"addr": "127.0.0.1:PORT", "model": NAME, "input": NAME, "output": NAME,
   "token": TOKEN, "k": K, "images": [{"path": RGB_FILE, "h": H, "w": W}]}
and prints a JSON answer:
  {"infer": [{"model_name", "shape", "logits", "top1", "classes"}],
   "errors": {CASE: GRPC_CODE_NAME}}
"""
import json
import struct
import sys

import grpc

sys.path.insert(0, sys.argv[1])
import grpc_predict_v2_pb2 as pb  # noqa: E402

job = json.load(sys.stdin)
channel = grpc.insecure_channel(job["addr"])
model_infer = channel.unary_unary(
    "/inference.GRPCInferenceService/ModelInfer",
    request_serializer=pb.ModelInferRequest.SerializeToString,
    response_deserializer=pb.ModelInferResponse.FromString,
)
auth = [("authorization", "Bearer " + job["token"])]


def request(pixels, shape, datatype="UINT8", name=None, model=None, classification=0):
    req = pb.ModelInferRequest(model_name=model or job["model"])
    t = req.inputs.add()
    t.name = name or job["input"]
    t.datatype = datatype
    t.shape.extend(shape)
    req.raw_input_contents.append(pixels)
    out = req.outputs.add()
    out.name = job["output"]
    if classification:
        out.parameters["classification"].int64_param = classification
    return req


def strings(raw):
    """BYTES elements: each a 4-byte little-endian length, then its bytes."""
    out = []
    while raw:
        (n,) = struct.unpack_from("<I", raw)
        out.append(raw[4:4 + n].decode())
        raw = raw[4 + n:]
    return out


answer = {"infer": [], "errors": {}}
for img in job["images"]:
    with open(img["path"], "rb") as f:
        px = f.read()
    shape = [1, img["h"], img["w"], 3]
    resp = model_infer(request(px, shape), metadata=auth, timeout=30)
    raw = resp.raw_output_contents[0]
    logits = list(struct.unpack("<%df" % (len(raw) // 4), raw))
    cls = model_infer(request(px, shape, classification=job["k"]), metadata=auth, timeout=30)
    answer["infer"].append({
        "model_name": resp.model_name,
        "shape": list(resp.outputs[0].shape),
        "logits": logits,
        "top1": max(range(len(logits)), key=logits.__getitem__),
        "classes": strings(cls.raw_output_contents[0]),
    })

px = open(job["images"][0]["path"], "rb").read()
h, w = job["images"][0]["h"], job["images"][0]["w"]
cases = {
    # FP32 data that does not match the model's [N, C, H, W].
    "bad_shape": (request(b"\0" * 4 * 3 * 5 * 5, [1, 3, 5, 5], datatype="FP32"), auth),
    "bad_input_name": (request(px, [1, h, w, 3], name="nope"), auth),
    "short_pixels": (request(px[:-1], [1, h, w, 3]), auth),
    "unknown_model": (request(px, [1, h, w, 3], model="nope"), auth),
    "no_token": (request(px, [1, h, w, 3]), []),
}
for case, (req, md) in cases.items():
    try:
        model_infer(req, metadata=md, timeout=30)
        answer["errors"][case] = "OK"
    except grpc.RpcError as e:
        answer["errors"][case] = e.code().name
json.dump(answer, sys.stdout)

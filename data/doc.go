// Package data decodes images, turns them into model input tensors the way BiT
// does, and opens labelled image datasets.
//
// # Decoding
//
// Decode reads JPEG, PNG, GIF (first frame), BMP and WebP. It is meant for
// untrusted input: the encoded size is capped (see MaxEncodedBytes), the pixel
// count is read with the format's DecodeConfig and checked against a cap
// BEFORE any pixel buffer is allocated, and third-party decoder panics are
// turned into errors. Every such error wraps ErrBadImage. JPEG EXIF
// orientation (tags 1-8) is applied; corrupt EXIF data is ignored.
//
// A JPEG's cost is bounded from its markers before either decoder runs
// (DecodeCostError): at most MaxJPEGScans scans, at most 16 walks over the
// frame's blocks summed over the scans, no more 8x8 blocks than 8 per byte
// of coded data (every block of a valid stream takes at least one bit), and
// for progressive streams a coefficient buffer of at most 8 bytes per
// allowed pixel. So decoding one image costs at most about 12 bytes per
// allowed pixel (coefficients plus pixels; 480 MB at DefaultMaxPixels,
// and only for uploads of at least one byte per 64 pixels) and a bounded
// number of block visits (under a second of CPU at DefaultMaxPixels),
// whatever the upload; a few hundred bytes can no longer claim a
// 40-megapixel progressive frame.
//
// Decode returns one of three concrete types so that preprocessing can take
// fast paths: *image.Gray (grayscale sources, including 16-bit ones, which are
// reduced to 8 bits), *image.YCbCr (ordinary colour JPEGs without rotation,
// when image/jpeg decodes them) or *image.RGBA (everything else).
//
// JPEGs are decoded with libjpeg-turbo when it can be loaded at run time
// (package internal/turbojpeg; Debian's libturbojpeg0), three to four times
// faster than image/jpeg, else with image/jpeg. $BITRUN_JPEG (or SelectJPEG)
// picks one: auto (default), turbo (fail when missing) or go. Streams
// libjpeg-turbo declines (CMYK and YCCK, RGB-coded streams, which
// libjpeg-turbo 2.1 may take for YCbCr, and headers it cannot read) go to
// image/jpeg. A stream libjpeg-turbo fails to decode (corrupt data,
// warnings such as a truncated scan, its scan limit) is bad: its error is
// final and image/jpeg does not decode it again.
// The two decoders' pixels differ by a level or two (IDCT rounding) and more
// along sharp colour edges (libjpeg-turbo interpolates subsampled chroma,
// image/jpeg replicates it), so scores can move in the last digits between
// machines with and without the library; one process uses one decoder.
//
// Transparent pixels are composited over WHITE, so the *image.RGBA result is
// always opaque.
//
// # Preprocessing
//
// EvalTensor and TrainTensor implement BiT's preprocessing: a square bilinear
// resize that does not keep the aspect ratio (plus, for training, a random
// crop and a random horizontal flip), then a per-channel affine map (Norm;
// BiTNorm maps [0,255] to [-1,1]). The resize is plain bilinear without
// antialiasing, with half-pixel centres, like tf.image.resize(method=bilinear,
// antialias=False) and PyTorch's align_corners=False: output pixel x samples
// the source at (x+0.5)*in/out - 0.5, clamped to the image. Output is CHW
// float32 written into a caller-owned slice; no pixel buffer is allocated per
// call.
//
// # Datasets
//
// Open reads a folder of IDX files (MNIST / Fashion-MNIST layout) or a folder
// of images with one sub-folder per class. Subset, Shuffled and PerClass
// select examples deterministically; Batch fills a whole batch tensor using
// all cores.
package data

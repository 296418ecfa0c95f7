// make_dataset_image: an `aisio fil gen` data set inside a new XFS image file (the
// demo's and tests' fil::DatasetImage, protofile mode: no mount, no root needed), for
// examples and tests to read through image:PATH.
#include <pybind11/pybind11.h>

#include "common/units.hpp"
#include "fil/image.hpp"

namespace aisio::py {

namespace pyb = pybind11;

void register_dataset(pyb::module_& m) {
  m.def("make_dataset_image", [](const std::string& workdir, uint64_t count, bool mix, uint64_t seed,
                                 const std::string& size, bool block_hashes) {
    fil::ImageOptions o;
    o.workdir = workdir;
    o.mode = "protofile";
    o.gen.count = count;
    o.gen.mix = mix;
    o.gen.seed = seed;
    o.gen.size = fil::SizeDist::parse(size);
    o.gen.block_hashes = block_hashes;
    o.gen.generator = "aisio.make_dataset_image";
    std::unique_ptr<fil::DatasetImage> img;
    {
      pyb::gil_scoped_release nogil;
      img = fil::DatasetImage::create(o);
      img->set_keep(true);  // the caller's workdir keeps it
    }
    pyb::dict d;
    d["image"] = img->image();
    d["fs_dir"] = img->fs_dir();
    d["source_dir"] = img->data_dir();
    d["files"] = img->gen().manifest.files.size();
    d["bytes"] = img->gen().manifest.total_bytes();
    return d;
  }, pyb::arg("workdir"), pyb::arg("count") = 40, pyb::arg("mix") = true, pyb::arg("seed") = 1,
     pyb::arg("size") = "lognormal:64K:1.5:2M", pyb::arg("block_hashes") = false,
     "Creates workdir/ with an XFS image holding a generated data set (`aisio fil gen` in the file system's "
     "/data, manifest.json beside the files) without mounting it (mkfs.xfs -p; needs xfsprogs). Returns "
     "{'image', 'fs_dir' ('/data'), 'source_dir' (the same files as a directory here), 'files', 'bytes'}. "
     "Read it with controller='image:' + image and via='xfs'.");
}

}  // namespace aisio::py

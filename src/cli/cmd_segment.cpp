// `gliomagrade segment`: the brain tumour of one BraTS-space case (T1, T1ce, T2, FLAIR) with
// CaPTk's DeepMedic model: a label map on the inputs' grid, tumour volumes in mL and the axial
// slice where the whole tumour is largest (segment::segment_case does the work).
#include <fmt/format.h>

#include "cli/command.h"
#include "segment/segment.h"

namespace gg::cli {
namespace {

namespace fs = std::filesystem;

struct SegmentArgs {
  segment::CaseInputs inputs;
  fs::path model, out;
  segment::SegmentOptions options;
};

void add_segment(CLI::App& app) {
  auto a = std::make_shared<SegmentArgs>();
  a->options.skip_background_tiles = true;
  auto* c = app.add_subcommand(
      "segment", "Segment the brain tumour (DeepMedic, BraTS labels) and measure its volumes");
  for (auto [flag, path, what] :
       {std::tuple{"--t1", &a->inputs.t1, "T1 volume (NIfTI/NRRD/MHA file or DICOM directory)"},
        std::tuple{"--t1ce", &a->inputs.t1ce, "contrast-enhanced T1 volume"},
        std::tuple{"--t2", &a->inputs.t2, "T2 volume"},
        std::tuple{"--flair", &a->inputs.flair, "FLAIR volume"}})
    c->add_option(flag, *path, what)->required()->check(CLI::ExistingPath);
  c->add_option("--out", a->out, "Output directory (labels.nii.gz, segmentation.json)")->required();
  c->add_option("--model", a->model,
                "DeepMedic model folder (default: $GLIOMAGRADE_DEEPMEDIC, else "
                "../shared/weights/deepmedic-brats-captk)");
  c->add_option("--tile", a->options.output_tile,
                "Output tile edge in voxels: larger is faster per voxel and needs more memory "
                "(45: the reference's tiling, reproduced voxel for voxel)")
      ->check(CLI::Range(9, 240))
      ->capture_default_str();
  c->add_flag("!--all-tiles", a->options.skip_background_tiles,
              "Also run the tiles that hold only background (on the BraTS sample: the same labels, "
              "1.4x the time)");
  c->footer(
      "Input: a BraTS-space case: the four sequences co-registered on one grid, skull-stripped,\n"
      "1 mm (BraTS files are). Each is z-scored over the brain as CaPTk does.\n"
      "Labels: 0 background, 1 necrosis / non-enhancing core, 2 oedema, 4 enhancing.\n"
      "Model: CaPTk 1.9's DeepMedic (Kamnitsas et al., Med Image Anal 36:61, 2017), trained on\n"
      "587 high-grade glioma cases; research use only (SBIA_license.txt beside the model).\n"
      "About 66 s and 1.1 GiB for a 240x240x155 case on 2 cores.\n"
      "Example:\n"
      "  gliomagrade segment --t1 P_t1.nii.gz --t1ce P_t1ce.nii.gz --t2 P_t2.nii.gz "
      "--flair P_flair.nii.gz --out P_seg");
  c->callback([a] {
    const fs::path model = segment::find_deepmedic_model(a->model);
    a->options.show_progress = !global_options().quiet;
    if (!global_options().quiet)
      fmt::print(stderr, "segmenting {} with DeepMedic ({})\n", a->inputs.flair.string(),
                 model.string());
    const auto result = segment::segment_case(model, a->inputs, a->options);
    segment::write_case_segmentation(result, a->inputs, model, a->out);
    const auto& v = result.volumes;
    fmt::print(
        "whole tumour {:.1f} mL (core {:.1f}, enhancing {:.1f}, necrosis/non-enhancing {:.1f}, "
        "oedema {:.1f}); largest axial slice z {}\n",
        v.whole_ml, v.core_ml, v.enhancing_ml, v.necrosis_ml, v.oedema_ml, result.largest_slice);
    fmt::print("results: {} (labels.nii.gz, segmentation.json)\n", a->out.string());
  });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(segment, 75, gg::cli::add_segment);

// Rigid registration with ITK v4 (see registration.h), and the transform arithmetic around it.
#include <itkAffineTransform.h>
#include <itkCommand.h>
#include <itkImage.h>
#include <itkImageRegistrationMethodv4.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkMattesMutualInformationImageToImageMetricv4.h>
#include <itkMultiThreaderBase.h>
#include <itkNearestNeighborInterpolateImageFunction.h>
#include <itkRegistrationParameterScalesFromPhysicalShift.h>
#include <itkRegularStepGradientDescentOptimizerv4.h>
#include <itkResampleImageFilter.h>
#include <itkVersorRigid3DTransform.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>

#include "common/error.h"
#include "io/background.h"
#include "registration/registration.h"

namespace gg::registration {

namespace {

using Image = itk::Image<float, 3>;
using Versor = itk::VersorRigid3DTransform<double>;

// A Volume's grid in ITK's types.
struct ItkGrid {
  Image::SizeType size;
  Image::SpacingType spacing;
  Image::PointType origin;
  Image::DirectionType direction;
};

ItkGrid itk_grid(const io::Volume& v) {
  ItkGrid g;
  for (unsigned i = 0; i < 3; ++i) {
    g.size[i] = static_cast<itk::SizeValueType>(v.size[i]);
    g.spacing[i] = v.spacing_mm[i];
    g.origin[i] = v.origin_mm[i];
    for (unsigned c = 0; c < 3; ++c) g.direction(i, c) = v.direction[i * 3 + c];
  }
  return g;
}

Image::Pointer to_itk(const io::Volume& v) {
  auto image = Image::New();
  const ItkGrid g = itk_grid(v);
  image->SetRegions(Image::RegionType(g.size));
  image->SetSpacing(g.spacing);
  image->SetOrigin(g.origin);
  image->SetDirection(g.direction);
  image->Allocate();
  std::copy(v.voxels.begin(), v.voxels.end(), image->GetBufferPointer());
  return image;
}

std::array<double, 3> physical_centre(const io::Volume& v) {
  std::array<double, 3> c = v.origin_mm;
  for (int r = 0; r < 3; ++r)
    for (int a = 0; a < 3; ++a)
      c[r] += v.direction[r * 3 + a] * 0.5 * (v.size[a] - 1) * v.spacing_mm[a];
  return c;
}

RigidTransform from_itk(const Versor& t) {
  RigidTransform out;
  const auto m = t.GetMatrix();
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) out.rotation[r * 3 + c] = m(r, c);
    out.centre_mm[r] = t.GetCenter()[r];
    out.translation_mm[r] = t.GetTranslation()[r];
  }
  return out;
}

itk::AffineTransform<double, 3>::Pointer to_itk(const RigidTransform& t) {
  auto a = itk::AffineTransform<double, 3>::New();
  itk::AffineTransform<double, 3>::MatrixType m;
  itk::AffineTransform<double, 3>::InputPointType centre;
  itk::AffineTransform<double, 3>::OutputVectorType translation;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) m(r, c) = t.rotation[r * 3 + c];
    centre[r] = t.centre_mm[r];
    translation[r] = t.translation_mm[r];
  }
  a->SetCenter(centre);
  a->SetMatrix(m);
  a->SetTranslation(translation);
  return a;
}

// Mattes MI of fixed vs moving through `transform`, over every fixed voxel (no sampling).
double mattes_value(Image* fixed, Image* moving, itk::Transform<double, 3, 3>* transform,
                    int bins) {
  using Metric = itk::MattesMutualInformationImageToImageMetricv4<Image, Image>;
  auto metric = Metric::New();
  metric->SetNumberOfHistogramBins(static_cast<itk::SizeValueType>(bins));
  metric->SetFixedImage(fixed);
  metric->SetMovingImage(moving);
  metric->SetMovingTransform(transform);
  metric->SetUseMovingImageGradientFilter(false);
  metric->SetUseFixedImageGradientFilter(false);
  metric->Initialize();
  return metric->GetValue();
}

// While one lives, ITK objects created (and the filters they create) use one thread. A
// registration is then the same, bit for bit, whatever the cores or the load: threaded, ITK's
// Mattes metric moved the result by up to 2e-3 mm between runs. Callers run registrations side
// by side instead (predict: T1 and T2).
class SerialItk {
 public:
  SerialItk() {
    std::lock_guard<std::mutex> lock(mutex());
    if (active()++ == 0) {
      saved() = itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads();
      itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(1);
    }
  }
  ~SerialItk() {
    std::lock_guard<std::mutex> lock(mutex());
    if (--active() == 0) itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(saved());
  }
  SerialItk(const SerialItk&) = delete;
  SerialItk& operator=(const SerialItk&) = delete;

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static int& active() {
    static int n = 0;
    return n;
  }
  static itk::ThreadIdType& saved() {
    static itk::ThreadIdType n = 1;
    return n;
  }
};

// Counts the optimiser's iterations per pyramid level.
class IterationCounter : public itk::Command {
 public:
  using Self = IterationCounter;
  using Pointer = itk::SmartPointer<Self>;
  itkNewMacro(Self);
  std::vector<int> per_level;
  void Execute(itk::Object* caller, const itk::EventObject& event) override {
    Execute(static_cast<const itk::Object*>(caller), event);
  }
  void Execute(const itk::Object*, const itk::EventObject& event) override {
    if (itk::MultiResolutionIterationEvent().CheckEvent(&event))
      per_level.push_back(0);
    else if (itk::IterationEvent().CheckEvent(&event) && !per_level.empty())
      ++per_level.back();
  }
};

}  // namespace

std::array<double, 3> RigidTransform::apply(const std::array<double, 3>& p) const {
  std::array<double, 3> out{};
  for (int r = 0; r < 3; ++r) {
    out[r] = centre_mm[r] + translation_mm[r];
    for (int c = 0; c < 3; ++c) out[r] += rotation[r * 3 + c] * (p[c] - centre_mm[c]);
  }
  return out;
}

double RigidTransform::angle_deg() const {
  const double trace = rotation[0] + rotation[4] + rotation[8];
  return std::acos(std::clamp((trace - 1) / 2, -1.0, 1.0)) * 180 / M_PI;
}

RigidTransform RigidTransform::inverse() const {
  // p = R^T (q - c - t) + c: the same centre, rotation R^T, translation -R^T t.
  RigidTransform inv;
  inv.centre_mm = centre_mm;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) inv.rotation[r * 3 + c] = rotation[c * 3 + r];
  for (int r = 0; r < 3; ++r) {
    inv.translation_mm[r] = 0;
    for (int c = 0; c < 3; ++c)
      inv.translation_mm[r] -= inv.rotation[r * 3 + c] * translation_mm[c];
  }
  return inv;
}

RigidTransform rigid_from_axis_angle(const std::array<double, 3>& axis, double angle_deg,
                                     const std::array<double, 3>& centre_mm,
                                     const std::array<double, 3>& translation_mm) {
  const double norm = std::sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
  const double x = axis[0] / norm, y = axis[1] / norm, z = axis[2] / norm;
  const double a = angle_deg * M_PI / 180, c = std::cos(a), s = std::sin(a), C = 1 - c;
  RigidTransform t;
  t.rotation = {x * x * C + c,     x * y * C - z * s, x * z * C + y * s,
                y * x * C + z * s, y * y * C + c,     y * z * C - x * s,
                z * x * C - y * s, z * y * C + x * s, z * z * C + c};
  t.centre_mm = centre_mm;
  t.translation_mm = translation_mm;
  return t;
}

std::vector<uint8_t> foreground_mask(const io::Volume& v) {
  const io::Background background = io::find_background(v);
  const float threshold = io::dark_threshold(v, background);
  std::vector<uint8_t> mask(v.voxels.size(), 0);
  for (size_t i = 0; i < mask.size(); ++i)
    mask[i] = !background.is_background(i) && v.voxels[i] > threshold;
  return mask;
}

double dice(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int64_t both = 0, sum = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) both += a[i] && b[i], sum += a[i] + b[i];
  return sum == 0 ? 1.0 : 2.0 * double(both) / double(sum);
}

io::Volume resample_rigid(const io::Volume& moving, const io::Volume& grid,
                          const RigidTransform& transform, io::Interpolation interpolation) {
  using Resampler = itk::ResampleImageFilter<Image, Image, double>;
  auto image = to_itk(moving);
  auto resampler = Resampler::New();
  resampler->SetInput(image);
  resampler->SetTransform(to_itk(transform));
  if (interpolation == io::Interpolation::kNearest)
    resampler->SetInterpolator(itk::NearestNeighborInterpolateImageFunction<Image, double>::New());
  else
    resampler->SetInterpolator(itk::LinearInterpolateImageFunction<Image, double>::New());
  const ItkGrid g = itk_grid(grid);
  resampler->SetSize(g.size);
  resampler->SetOutputSpacing(g.spacing);
  resampler->SetOutputOrigin(g.origin);
  resampler->SetOutputDirection(g.direction);
  // Outside the moving image is its background (0 in BraTS, negative after z-scoring).
  resampler->SetDefaultPixelValue(io::find_background(moving).value);
  resampler->Update();
  io::Volume out;
  out.size = grid.size;
  out.spacing_mm = grid.spacing_mm;
  out.origin_mm = grid.origin_mm;
  out.direction = grid.direction;
  const float* data = resampler->GetOutput()->GetBufferPointer();
  out.voxels.assign(data, data + out.num_voxels());
  return out;
}

RegistrationResult register_rigid(const io::Volume& fixed, const io::Volume& moving,
                                  const RegistrationOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const SerialItk serial;
  using Metric = itk::MattesMutualInformationImageToImageMetricv4<Image, Image>;
  using Optimizer = itk::RegularStepGradientDescentOptimizerv4<double>;
  using Method = itk::ImageRegistrationMethodv4<Image, Image, Versor>;
  RegistrationResult result;
  const std::vector<uint8_t> fixed_mask = foreground_mask(fixed);
  if (std::count(fixed_mask.begin(), fixed_mask.end(), uint8_t(1)) == 0 ||
      std::all_of(moving.voxels.begin(), moving.voxels.end(), [](float v) { return v == 0; }))
    throw_bad_input("", "nothing to register: an image has no foreground");
  result.dice_before = dice(
      fixed_mask, foreground_mask(resample_rigid(moving, fixed, {}, io::Interpolation::kLinear)));
  if (result.dice_before == 0)
    throw_bad_input("", "the images do not overlap in physical space: cannot register them",
                    "check that both series come from one session (their headers' positions)");

  auto fixed_image = to_itk(fixed), moving_image = to_itk(moving);
  auto transform = Versor::New();
  Versor::InputPointType centre;
  const auto c = physical_centre(fixed);
  for (int a = 0; a < 3; ++a) centre[a] = c[a];
  transform->SetCenter(centre);
  result.metric_before = mattes_value(fixed_image, moving_image, transform, o.histogram_bins);

  auto metric = Metric::New();
  metric->SetNumberOfHistogramBins(static_cast<itk::SizeValueType>(o.histogram_bins));
  metric->SetUseMovingImageGradientFilter(false);
  metric->SetUseFixedImageGradientFilter(false);
  metric->SetMaximumNumberOfWorkUnits(1);  // see SerialItk
  auto optimizer = Optimizer::New();
  auto scales = itk::RegistrationParameterScalesFromPhysicalShift<Metric>::New();
  scales->SetMetric(metric);
  optimizer->SetScalesEstimator(scales);
  optimizer->SetDoEstimateLearningRateOnce(true);
  optimizer->SetDoEstimateLearningRateAtEachIteration(false);
  optimizer->SetMinimumStepLength(1e-4);
  optimizer->SetRelaxationFactor(0.5);
  optimizer->SetGradientMagnitudeTolerance(1e-6);
  optimizer->SetNumberOfIterations(static_cast<itk::SizeValueType>(o.iterations_per_level));
  optimizer->SetReturnBestParametersAndValue(true);

  auto method = Method::New();
  method->SetFixedImage(fixed_image);
  method->SetMovingImage(moving_image);
  method->SetMetric(metric);
  method->SetOptimizer(optimizer);
  method->SetInitialTransform(transform);
  method->InPlaceOn();
  // The pyramid, each shrink capped so the coarsest level keeps >= 16 voxels per axis.
  const int smallest = *std::min_element(fixed.size.begin(), fixed.size.end());
  const size_t levels = std::min(o.shrink_factors.size(), o.smoothing_sigmas_mm.size());
  Method::ShrinkFactorsArrayType shrink(static_cast<unsigned>(levels));
  Method::SmoothingSigmasArrayType sigmas(static_cast<unsigned>(levels));
  for (size_t l = 0; l < levels; ++l) {
    shrink[l] = static_cast<itk::SizeValueType>(
        std::max(1, std::min(o.shrink_factors[l], std::max(1, smallest / 16))));
    sigmas[l] = o.smoothing_sigmas_mm[l];
  }
  method->SetNumberOfLevels(static_cast<itk::SizeValueType>(levels));
  method->SetShrinkFactorsPerLevel(shrink);
  method->SetSmoothingSigmasPerLevel(sigmas);
  method->SmoothingSigmasAreSpecifiedInPhysicalUnitsOn();
  method->SetMetricSamplingStrategy(Method::MetricSamplingStrategyEnum::RANDOM);
  method->SetMetricSamplingPercentage(o.sampling_fraction);
  method->MetricSamplingReinitializeSeed(static_cast<int>(o.seed % 2147483647));
  IterationCounter::Pointer counter = IterationCounter::New();
  method->AddObserver(itk::MultiResolutionIterationEvent(), counter);
  optimizer->AddObserver(itk::IterationEvent(), counter);
  try {
    method->Update();
  } catch (const itk::ExceptionObject& e) {
    throw Error(ExitCode::kRuntime, "", std::string("registration failed: ") + e.GetDescription(),
                "pass --no-register to resample in physical space only");
  }
  result.iterations = counter->per_level;
  result.stop_condition = optimizer->GetStopConditionDescription();
  const Versor* final_transform = method->GetTransform();
  result.transform = from_itk(*final_transform);
  auto final_copy = Versor::New();
  final_copy->SetFixedParameters(final_transform->GetFixedParameters());
  final_copy->SetParameters(final_transform->GetParameters());
  result.metric_after = mattes_value(fixed_image, moving_image, final_copy, o.histogram_bins);
  result.dice_after = dice(
      fixed_mask,
      foreground_mask(resample_rigid(moving, fixed, result.transform, io::Interpolation::kLinear)));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace gg::registration

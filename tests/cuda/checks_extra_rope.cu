// Check of extra::rope (the RoPE the engine runs through backend.cpp: fp32 x [T, heads·D] (ld), int32 positions,
// inv_freq [rot/2]) against a double reference built from the same float angles as the CPU op (float(pos)·inv_freq,
// cos/sin in double, rounded to float, times the attention scaling). Shapes: decode batch 1 / 64 at Qwen3.5 partial
// RoPE (D 256, rot 64), ragged T, full rot, the interleaved (pairs → halves) layout with an offset, rot = 512.
// Columns outside the rotated range and the row padding past heads·D must stay untouched.
#include "ops/cuda/extra.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

void check_extra_rope() {
  struct S { int64_t T, heads, hd, rot, off; bool inter; };
  std::vector<S> shapes = {{1, 16, 256, 64, 0, false},  {64, 16, 256, 64, 0, false}, {65, 4, 256, 64, 0, false},
                           {3, 8, 128, 128, 0, false},  {77, 4, 192, 64, 128, true}, {5, 2, 512, 512, 0, true},
                           {300, 16, 64, 32, 16, false}, {2, 3, 96, 96, 0, true}};
  if (g_small) shapes = {{3, 2, 64, 32, 0, false}, {5, 2, 96, 32, 64, true}};
  for (auto s : shapes) {
    const int64_t ldx = s.heads * s.hd + 12;
    auto x = randn(s.T * ldx, 1.0f, DType::f32);
    std::vector<int32_t> pos(s.T);
    for (auto& p : pos) p = randint(0, 200000);
    std::vector<float> inv(s.rot / 2);
    for (int64_t i = 0; i < s.rot / 2; ++i)
      inv[i] = 1.0f / std::pow(1e7f, static_cast<float>(2 * i) / static_cast<float>(s.rot));
    const float scaling = 1.1f;
    Buf dx = up(x, DType::f32), dp = up_raw(pos), di = up_raw(inv);
    CK(hc::extra::rope(dx.as<float>(), ldx, s.T, s.heads, s.hd, dp.as<int32_t>(), di.as<float>(), s.rot, s.off,
                       scaling, s.inter, nullptr));
    auto got = down(dx, s.T * ldx, DType::f32);
    std::vector<float> g2;
    std::vector<double> ref;
    bool pad_ok = true;
    for (int64_t t = 0; t < s.T; ++t)
      for (int64_t c = s.heads * s.hd; c < ldx; ++c) pad_ok &= got[t * ldx + c] == x[t * ldx + c];
    rope_ref_rows(x, got, ldx, s.T, s.heads, s.hd, pos, inv, s.rot, s.off, s.inter, scaling, g2, ref);
    char name[128];
    std::snprintf(name, sizeof name, "extra::rope T=%ld heads=%ld hd=%ld rot=%ld off=%ld interleaved=%d", (long)s.T,
                  (long)s.heads, (long)s.hd, (long)s.rot, (long)s.off, s.inter);
    compare(name, DType::f32, g2, ref, 1e-6, 8e-3);
    expect(std::string(name) + " row padding untouched", pad_ok);
  }
}

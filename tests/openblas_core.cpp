// Prints the OpenBLAS kernel set in use (OPENBLAS_CORETYPE picks it in a DYNAMIC_ARCH build; an unknown value falls
// back silently to the detected core). scripts/test.sh uses it to make sure a run under a core type really used it.
#include <cstdio>

extern "C" char* openblas_get_corename(void);

int main() {
  std::printf("%s\n", openblas_get_corename());
  return 0;
}

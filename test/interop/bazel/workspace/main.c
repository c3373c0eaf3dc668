#include <stdio.h>

#include "lib.h"

int main(void) {
  puts(greeting());
  return 0;
}

/* A small checksum (FNV-1a, 32 bits) and its hexadecimal form. */
#ifndef BASE_CHECKSUM_H
#define BASE_CHECKSUM_H

unsigned int base_checksum(const char *s);
/* Writes 8 lowercase hex digits and a NUL to out. */
void base_hex(unsigned int v, char out[9]);

#endif

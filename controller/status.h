/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdio.h>

/*
 * `fleetmedic status`: fetches /status from a running daemon at listen
 * (ADDR:PORT) and prints it to out as readable tables. Returns 0, -EINVAL
 * for a bad address, -ECONNREFUSED / -EIO when the daemon cannot be
 * reached or answers badly (the reason is written to err).
 */
int fm_status_print(const char *listen, FILE *out, FILE *err);

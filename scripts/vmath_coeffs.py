#!/usr/bin/python3
"""Coefficients of the in-house polynomial kernels of src/core/vmath.h.

Each kernel evaluates a reduced function as a polynomial in a small argument; the
polynomials are Chebyshev fits (mpmath.chebyfit, near-minimax) of the reduced functions,
computed here at 60 digits:

  exp      exp(r) = 1 + r (1 + r q(r)),   q(r) = (exp(r) - 1 - r) / r^2,   |r| <= ln2 / 2,
           q of degree 9
  exp_t16s the table exp on a pre-scaled argument: 2^(t/16) = 1 + t (C + t q(t)), C = ln2 / 16,
           q(t) = (exp(C t) - 1 - C t) / t^2 on |t| <= 1/2, degree 4, then C; and the table
           hb_exp2_16[j] = 2^(j/16) rounded to double (j = 0..15)
  log      log(1+f) = 2 s + s z P(z),      s = f / (2 + f), z = s^2,
           P(z) = (2 atanh(s) / s - 2) / z on 0 <= z <= ((sqrt2 - 1) / (sqrt2 + 1))^2,
           P of degree 6
  cospi    cos(pi x) = 1 + z C(z),         C(z) = (cos(pi sqrt z) - 1) / z,   z = x^2 <= 1/16,
           C of degree 6
  sinpi    sin(pi x) = x (pi + z S(z)),    S(z) = (sin(pi sqrt z) / sqrt z - pi) / z,
           S of degree 5

Usage: scripts/vmath_coeffs.py [--check src/core/vmath.h]
Prints the coefficients (highest degree first, as the C arrays hold them) and the maximum
relative error of each fit; --check compares them with the arrays in vmath.h and exits 1 if
any differs by more than 1e-15 relative. Needs python3-mpmath (Debian); not used by the build.
"""
import re
import sys

import mpmath as mp

mp.mp.dps = 60


def q_exp(r):
    if abs(r) < mp.mpf("1e-20"):
        return mp.mpf(1) / 2 + r / 6
    return (mp.exp(r) - 1 - r) / r**2


C16 = mp.log(2) / 16


def q_exp16s(t):
    """The pre-scaled table exp's q: 2^(t/16) = 1 + t (C + t q(t)), C = ln2 / 16."""
    if abs(t) < mp.mpf("1e-20"):
        return C16**2 / 2 + C16**3 * t / 6
    return (mp.exp(C16 * t) - 1 - C16 * t) / t**2


def p_log(z):
    if z < mp.mpf("1e-40"):
        return mp.mpf(2) / 3 + 2 * z / 5
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) / s - 2) / z


def c_cos(z):
    if z < mp.mpf("1e-40"):
        return -mp.pi**2 / 2 + mp.pi**4 * z / 24
    return (mp.cos(mp.pi * mp.sqrt(z)) - 1) / z


def s_sin(z):
    if z < mp.mpf("1e-40"):
        return -mp.pi**3 / 6 + mp.pi**5 * z / 120
    t = mp.sqrt(z)
    return (mp.sin(mp.pi * t) / t - mp.pi) / z


SMAX = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)
FITS = [
    # name in vmath.h, function, interval, degree, constant terms appended after the fit
    ("hb_exp_c", q_exp, (-mp.log(2) / 2, mp.log(2) / 2), 9, [1.0, 1.0]),
    ("hb_exp16s_c", q_exp16s, (-mp.mpf(1) / 2, mp.mpf(1) / 2), 4, [float(C16)]),
    ("hb_log_c", p_log, (mp.mpf(0), SMAX**2), 6, []),
    ("hb_cos_c", c_cos, (mp.mpf(0), mp.mpf(1) / 16), 6, [1.0]),
    ("hb_sin_c", s_sin, (mp.mpf(0), mp.mpf(1) / 16), 5, [float(mp.pi)]),
]


def tables():
    return [("hb_exp2_16", [float(mp.mpf(2) ** (mp.mpf(j) / 16)) for j in range(16)])]


def fit(f, iv, deg):
    coeffs, err = mp.chebyfit(f, iv, deg + 1, error=True)
    # relative error over the interval, sampled densely
    a, b = iv
    worst = mp.mpf(0)
    for k in range(2001):
        t = a + (b - a) * k / 2000
        worst = max(worst, abs(mp.polyval(coeffs, t) / f(t) - 1))
    return coeffs, worst


def read_arrays(path):
    text = open(path).read()
    out = {}
    for name in [f[0] for f in FITS] + [t[0] for t in tables()]:
        m = re.search(r"static const double %s\[\d+\] = \{([^}]*)\}" % name, text)
        if m:
            out[name] = [float.fromhex(v) if "0x" in v else float(v)
                         for v in m.group(1).replace("\n", " ").split(",") if v.strip()]
    return out


def main():
    check = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--check" else None
    have = read_arrays(check) if check else {}
    bad = 0
    for name, f, iv, deg, tail in FITS:
        coeffs, worst = fit(f, iv, deg)
        vals = [float(c) for c in coeffs] + tail
        print(f"{name} (degree {deg}, max relative error of the fit {mp.nstr(worst, 3)}):")
        print("  {" + ", ".join(repr(v) for v in vals) + "}")
        if check:
            h = have.get(name)
            if h is None or len(h) != len(vals):
                print(f"  vmath.h: {name} missing or of another length")
                bad += 1
                continue
            dev = max(abs(x - y) / abs(y) for x, y in zip(h, vals))
            print(f"  vmath.h: largest relative difference {dev:.2e}")
            bad += dev > 1e-15
    for name, vals in tables():
        print(f"{name}:")
        print("  {" + ", ".join(v.hex() for v in vals) + "}")
        if check:
            h = have.get(name)
            same = h is not None and h == vals
            print(f"  vmath.h: {'identical' if same else 'differs or missing'}")
            bad += not same
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Why F(4x4, 3x3) uses interpolation points 0, +-1, +-2 rather than 0, +-1, +-1/2.

Builds both Winograd F(4,3) matrix sets exactly (fractions; A^T and G from the
points, B^T solved so the algorithm is exact, each B^T row scaled to coprime
integers with the scale moved into G), checks them on integer data, then runs
300 random 6x6 tiles through each in simulated f32 (every product and sum
rounded) against the exact result. Pure Python, no dependencies; the matrices
src/engine/conv/winograd/f43.rs uses are the first set printed.

usage: winograd_f43_points.py
"""
from fractions import Fraction as F
import random, struct
def f32(x): return struct.unpack('f', struct.pack('f', float(x)))[0]
m, r = 4, 3; n = m + r - 1
def solve_BT(AT, G):
    # unknowns BT[j][l]; equations: sum_j AT[i][j] G[j][k] BT[j][l] = [l==i+k]
    # decoupled per l: unknowns x_j = BT[j][l], equations over (i,k)
    BT = [[F(0)]*n for _ in range(n)]
    for l in range(n):
        rows = []
        for i in range(m):
            for k in range(r):
                rows.append([AT[i][j]*G[j][k] for j in range(n)] + [F(1 if l == i+k else 0)])
        # gaussian elimination least squares exact: solve consistent system
        M = rows; piv = []; rr = 0
        for c in range(n):
            p = next((q for q in range(rr, len(M)) if M[q][c] != 0), None)
            if p is None: continue
            M[rr], M[p] = M[p], M[rr]
            pv = M[rr][c]; M[rr] = [v/pv for v in M[rr]]
            for q in range(len(M)):
                if q != rr and M[q][c] != 0:
                    f = M[q][c]; M[q] = [a - f*b for a, b in zip(M[q], M[rr])]
            piv.append(c); rr += 1
        assert all(all(v == 0 for v in row) for row in M[rr:]), "inconsistent"
        for q, c in enumerate(piv): BT[c][l] = M[q][n]
    return BT
def build(pts, gscale=None):
    AT = [[F(p)**i for p in pts] + [F(1 if i == m-1 else 0)] for i in range(m)]
    G = []
    for j, p in enumerate(pts):
        f = 1
        for q in pts:
            if q != p: f *= (F(p) - F(q))
        G.append([F(p)**k / f for k in range(r)])
    G.append([F(0)]*(r-1) + [F(1)])
    BT = solve_BT(AT, G)
    return AT, G, BT
def balance(AT, G, BT):
    # make each BT row integer with gcd 1 by moving scale into G rows
    from math import lcm, gcd
    for j in range(n):
        den = 1
        for v in BT[j]: den = lcm(den, v.denominator)
        num = 0
        for v in BT[j]: num = gcd(num, int(v*den))
        s = F(den, num)
        BT[j] = [v*s for v in BT[j]]; G[j] = [v/s for v in G[j]]
    return AT, G, BT
def mm(A, B): return [[sum(A[i][k]*B[k][j] for k in range(len(B))) for j in range(len(B[0]))] for i in range(len(A))]
def T(A): return [list(x) for x in zip(*A)]
def run32(AT, G, BT, d, g):
    # U exact (f64) then rounded; V, M, Y in f32 with rounding per op (approx: per matrix product sum)
    ATf = [[float(v) for v in row] for row in AT]; BTf = [[float(v) for v in row] for row in BT]; Gf = [[float(v) for v in row] for row in G]
    U = [[f32(v) for v in row] for row in mm(mm(Gf, g), T(Gf))]
    def mm32(A, B):
        out = []
        for i in range(len(A)):
            row = []
            for j in range(len(B[0])):
                s = 0.0
                for k in range(len(B)):
                    s = f32(s + f32(A[i][k]*B[k][j]))
                row.append(s)
            out.append(row)
        return out
    V = mm32(mm32(BTf, d), T(BTf))
    Mx = [[f32(U[i][j]*V[i][j]) for j in range(n)] for i in range(n)]
    return mm32(mm32(ATf, Mx), T(ATf))
def direct(d, g): return [[sum(d[i+a][j+b]*g[a][b] for a in range(3) for b in range(3)) for j in range(m)] for i in range(m)]
for name, pts in [("0,+-1,+-2", [0, 1, -1, 2, -2]), ("0,+-1,+-1/2", [0, 1, -1, F(1,2), F(-1,2)])]:
    AT, G, BT = balance(*build(pts))
    # exactness check
    random.seed(1)
    d = [[F(random.randint(-5,5)) for _ in range(n)] for _ in range(n)]; g = [[F(random.randint(-5,5)) for _ in range(3)] for _ in range(3)]
    Y = mm(mm(AT, [[a*b for a, b in zip(x, y)] for x, y in zip(mm(mm(G, g), T(G)), mm(mm(BT, d), T(BT)))]), T(AT))
    assert Y == direct(d, g), name
    print(name); print(" AT", [[str(v) for v in row] for row in AT]); print(" G", [[str(v) for v in row] for row in G]); print(" BT", [[str(v) for v in row] for row in BT])
    errs = []
    for t in range(300):
        d = [[f32(random.uniform(-1,1)) for _ in range(n)] for _ in range(n)]; g = [[f32(random.uniform(-1,1)) for _ in range(3)] for _ in range(3)]
        y = run32(AT, G, BT, d, g); ref = direct(d, g)
        errs.append(max(abs(y[i][j]-ref[i][j]) for i in range(m) for j in range(m)))
    print(" max abs err %.3e mean %.3e" % (max(errs), sum(errs)/len(errs)))

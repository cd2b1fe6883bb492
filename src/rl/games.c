/* Matrix games and exact iterated-game values.  Derivatives are exact: the value is evaluated
 * in hyper-dual arithmetic (a + b e1 + c e2 + d e1e2 with e1^2 = e2^2 = 0), which carries
 * first derivatives along two directions and their mixed second derivative through the 4x4
 * solve without truncation error. */
#include "rl/games.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const br_game_t games[] = {
    /* R-FOS reference: player 0 (shaper) wins when the actions match. */
    {"matching-pennies", "mp,pennies,imp", {{{1, 0}, {0, 1}}, {{0, 1}, {1, 0}}}},
    /* M-FOS IPD: action 0 = cooperate; [[-1,-3],[0,-2]] for the row player. */
    {"ipd", "prisoners-dilemma,pd", {{{-1, -3}, {0, -2}}, {{-1, 0}, {-3, -2}}}},
    /* action 0 = swerve, 1 = straight. */
    {"chicken", "", {{{0, -1}, {1, -10}}, {{0, 1}, {-1, -10}}}},
    /* action 0 = stag, 1 = hare. */
    {"stag-hunt", "stag", {{{4, 0}, {3, 3}}, {{4, 3}, {0, 3}}}},
    /* action 0 = the row player's favourite event. */
    {"battle-of-the-sexes", "bos", {{{3, 0}, {0, 2}}, {{2, 0}, {0, 3}}}},
};

const br_game_t *br_game_list(size_t *n)
{
    *n = sizeof games / sizeof *games;
    return games;
}

const char *br_game_names(void)
{
    static char buf[256];
    buf[0] = 0;
    for (size_t i = 0; i < sizeof games / sizeof *games; i++) {
        if (i) strcat(buf, ", ");
        strcat(buf, games[i].name);
    }
    return buf;
}

static int alias_match(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

br_status br_game_find(const char *name, const br_game_t **out)
{
    if (!name) return br_error(BR_EINVAL, "no game given (known: %s)", br_game_names());
    for (size_t i = 0; i < sizeof games / sizeof *games; i++)
        if (!strcmp(games[i].name, name) || alias_match(games[i].aliases, name)) {
            *out = &games[i];
            return BR_OK;
        }
    return br_error(BR_ENOTFOUND, "unknown game '%s' (known: %s)", name, br_game_names());
}

/* ---- hyper-dual numbers ---- */
typedef struct { double a, b, c, d; } hd;

static hd hd_c(double a) { return (hd){a, 0, 0, 0}; }
static hd hd_add(hd x, hd y) { return (hd){x.a + y.a, x.b + y.b, x.c + y.c, x.d + y.d}; }
static hd hd_sub(hd x, hd y) { return (hd){x.a - y.a, x.b - y.b, x.c - y.c, x.d - y.d}; }
static hd hd_mul(hd x, hd y)
{
    return (hd){x.a * y.a, x.a * y.b + x.b * y.a, x.a * y.c + x.c * y.a,
                x.a * y.d + x.d * y.a + x.b * y.c + x.c * y.b};
}
static hd hd_scale(hd x, double s) { return (hd){x.a * s, x.b * s, x.c * s, x.d * s}; }
static hd hd_inv(hd x)
{
    double ia = 1 / x.a;
    return (hd){ia, -x.b * ia * ia, -x.c * ia * ia, 2 * x.b * x.c * ia * ia * ia - x.d * ia * ia};
}
static hd hd_sigmoid(hd x)
{
    double s = 1 / (1 + exp(-x.a)), d1 = s * (1 - s), d2 = d1 * (1 - 2 * s);
    return (hd){s, d1 * x.b, d1 * x.c, d1 * x.d + d2 * x.b * x.c};
}

/* Value of player p in hyper-dual arithmetic. */
static hd value_hd(const br_game_t *g, int p, const hd t0[5], const hd t1[5], double gamma)
{
    hd p0[5], p1[5];
    for (int i = 0; i < 5; i++) {
        p0[i] = hd_sigmoid(t0[i]);
        p1[i] = hd_sigmoid(t1[i]);
    }
    /* Probability that each player plays action 0 in round 0 / after joint state s (player
     * 0's view, s = 2 a0 + a1); player 1 sees s' = 2 a1 + a0. */
    static const int swap[4] = {0, 2, 1, 3};
    hd q0[5], q1[5];
    q0[0] = p0[0];
    q1[0] = p1[0];
    for (int s = 0; s < 4; s++) {
        q0[1 + s] = p0[1 + s];
        q1[1 + s] = p1[1 + swap[s]];
    }
    /* A = I - gamma M^T (A[j][s] = delta - gamma M[s][j]), b = x0; solve A y = x0. */
    hd A[4][5];
    for (int j = 0; j < 4; j++) {
        int x = j >> 1, y = j & 1;
        for (int s = 0; s < 4; s++) {
            hd px = x == 0 ? q0[1 + s] : hd_sub(hd_c(1), q0[1 + s]);
            hd py = y == 0 ? q1[1 + s] : hd_sub(hd_c(1), q1[1 + s]);
            A[j][s] = hd_scale(hd_mul(px, py), -gamma);
            if (s == j) A[j][s] = hd_add(A[j][s], hd_c(1));
        }
        hd px = x == 0 ? q0[0] : hd_sub(hd_c(1), q0[0]);
        hd py = y == 0 ? q1[0] : hd_sub(hd_c(1), q1[0]);
        A[j][4] = hd_mul(px, py);
    }
    /* Gaussian elimination with partial pivoting on the real part.  A is a nonsingular
     * M-matrix-like system (diagonally dominant by columns since M is stochastic), so this is
     * stable. */
    for (int k = 0; k < 4; k++) {
        int piv = k;
        for (int i = k + 1; i < 4; i++)
            if (fabs(A[i][k].a) > fabs(A[piv][k].a)) piv = i;
        if (piv != k)
            for (int c = 0; c < 5; c++) {
                hd t = A[k][c];
                A[k][c] = A[piv][c];
                A[piv][c] = t;
            }
        hd inv = hd_inv(A[k][k]);
        for (int i = k + 1; i < 4; i++) {
            hd f = hd_mul(A[i][k], inv);
            for (int c = k; c < 5; c++) A[i][c] = hd_sub(A[i][c], hd_mul(f, A[k][c]));
        }
    }
    hd y[4];
    for (int k = 3; k >= 0; k--) {
        hd acc = A[k][4];
        for (int c = k + 1; c < 4; c++) acc = hd_sub(acc, hd_mul(A[k][c], y[c]));
        y[k] = hd_mul(acc, hd_inv(A[k][k]));
    }
    hd v = hd_c(0);
    for (int s = 0; s < 4; s++) v = hd_add(v, hd_scale(y[s], g->payoff[p][s >> 1][s & 1]));
    return hd_scale(v, 1 - gamma);
}

static void load(hd *t, const double *th)
{
    for (int i = 0; i < 5; i++) t[i] = hd_c(th[i]);
}

br_status br_iterated_values(double v[2], const br_game_t *g, const double th0[5],
                             const double th1[5], double gamma)
{
    if (!(gamma >= 0 && gamma < 1)) return br_error(BR_EINVAL, "discount %g must be in [0, 1)", gamma);
    for (int i = 0; i < 5; i++)
        if (!isfinite(th0[i]) || !isfinite(th1[i]))
            return br_error(BR_EINVAL, "memory-1 logits must be finite");
    hd t0[5], t1[5];
    load(t0, th0);
    load(t1, th1);
    v[0] = value_hd(g, 0, t0, t1, gamma).a;
    v[1] = value_hd(g, 1, t0, t1, gamma).a;
    return BR_OK;
}

void br_iterated_grad(double *d0, double *d1, const br_game_t *g, int p, const double th0[5],
                      const double th1[5], double gamma)
{
    hd t0[5], t1[5];
    load(t0, th0);
    load(t1, th1);
    for (int i = 0; i < 5; i++) {
        if (d0) {
            t0[i].b = 1;
            d0[i] = value_hd(g, p, t0, t1, gamma).b;
            t0[i].b = 0;
        }
        if (d1) {
            t1[i].b = 1;
            d1[i] = value_hd(g, p, t0, t1, gamma).b;
            t1[i].b = 0;
        }
    }
}

void br_iterated_mixed_hessian(double *h, const br_game_t *g, int p, const double th0[5],
                               const double th1[5], double gamma)
{
    hd t0[5], t1[5];
    load(t0, th0);
    load(t1, th1);
    for (int i = 0; i < 5; i++) {
        t0[i].b = 1;
        for (int j = 0; j < 5; j++) {
            t1[j].c = 1;
            h[i * 5 + j] = value_hd(g, p, t0, t1, gamma).d;
            t1[j].c = 0;
        }
        t0[i].b = 0;
    }
}

/* Solves the 4x4 system A x = b in place (partial pivoting). */
static void solve4(double A[4][4], double *b)
{
    for (int k = 0; k < 4; k++) {
        int piv = k;
        for (int i = k + 1; i < 4; i++)
            if (fabs(A[i][k]) > fabs(A[piv][k])) piv = i;
        if (piv != k) {
            for (int c = 0; c < 4; c++) {
                double t = A[k][c];
                A[k][c] = A[piv][c];
                A[piv][c] = t;
            }
            double t = b[k];
            b[k] = b[piv];
            b[piv] = t;
        }
        for (int i = k + 1; i < 4; i++) {
            double f = A[i][k] / A[k][k];
            for (int c = k; c < 4; c++) A[i][c] -= f * A[k][c];
            b[i] -= f * b[k];
        }
    }
    for (int k = 3; k >= 0; k--) {
        double acc = b[k];
        for (int c = k + 1; c < 4; c++) acc -= A[k][c] * b[c];
        b[k] = acc / A[k][k];
    }
}

void br_iterated_value_grad(double *v, double *d, const br_game_t *g, int p, int q,
                            const double th0[5], const double th1[5], double gamma)
{
    static const int swap[4] = {0, 2, 1, 3};
    double a0[5], a1[5]; /* P(action 0): first round, then per joint state in player 0's view */
    a0[0] = 1 / (1 + exp(-th0[0]));
    a1[0] = 1 / (1 + exp(-th1[0]));
    for (int s = 0; s < 4; s++) {
        a0[1 + s] = 1 / (1 + exp(-th0[1 + s]));
        a1[1 + s] = 1 / (1 + exp(-th1[1 + swap[s]]));
    }
    double M[4][4], x0[4], At[4][4], A[4][4], y[4], w[4];
    for (int s = 0; s < 4; s++)
        for (int j = 0; j < 4; j++)
            M[s][j] = ((j >> 1) ? 1 - a0[1 + s] : a0[1 + s]) * ((j & 1) ? 1 - a1[1 + s] : a1[1 + s]);
    for (int j = 0; j < 4; j++) x0[j] = ((j >> 1) ? 1 - a0[0] : a0[0]) * ((j & 1) ? 1 - a1[0] : a1[0]);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            At[i][j] = (i == j) - gamma * M[j][i];
            A[i][j] = (i == j) - gamma * M[i][j];
        }
    memcpy(y, x0, sizeof y);
    solve4(At, y);
    for (int s = 0; s < 4; s++) w[s] = g->payoff[p][s >> 1][s & 1];
    solve4(A, w);
    if (v) {
        for (int pl = 0; pl < 2; pl++) {
            double acc = 0;
            for (int s = 0; s < 4; s++) acc += y[s] * g->payoff[pl][s >> 1][s & 1];
            v[pl] = (1 - gamma) * acc;
        }
    }
    if (!d) return;
    /* Player q's probability of action 0 enters x0 (first round) and row s of M as
     * P(x) = a or 1 - a on its own coordinate; d a / d th = a (1 - a). */
    const double *aq = q == 0 ? a0 : a1, *ao = q == 0 ? a1 : a0;
    /* w . dx0 */
    {
        double da = aq[0] * (1 - aq[0]), acc = 0;
        for (int j = 0; j < 4; j++) {
            int mine = q == 0 ? j >> 1 : j & 1, other = q == 0 ? j & 1 : j >> 1;
            acc += w[j] * (mine ? -da : da) * (other ? 1 - ao[0] : ao[0]);
        }
        d[0] = (1 - gamma) * acc;
    }
    for (int k = 0; k < 4; k++) {
        /* th_q[1 + k] drives row s of M with s = k (player 0) or swap(k) (player 1). */
        int s = q == 0 ? k : swap[k];
        double da = aq[1 + s] * (1 - aq[1 + s]), acc = 0;
        for (int j = 0; j < 4; j++) {
            int mine = q == 0 ? j >> 1 : j & 1, other = q == 0 ? j & 1 : j >> 1;
            acc += (mine ? -da : da) * (other ? 1 - ao[1 + s] : ao[1 + s]) * w[j];
        }
        d[1 + k] = (1 - gamma) * gamma * y[s] * acc;
    }
}

/* Rules of the Dec-POMDP tasks pinned on hand-worked episodes: switch riddle, switch with
 * bridges, particle simple_reference; bad input; determinism. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "rl/dec_pomdp.h"

static int room_of(const br_env_t *e, int b)
{
    const int n = e->spec.n_agents, od = e->spec.obs_dim;
    const int off = e->spec.bridge_len;
    int room = -1, count = 0;
    for (int i = 0; i < n; i++)
        if (e->obs[((size_t)b * n + i) * od + off] == 1) room = i, count++;
    return count == 1 ? room : -1;
}

static void test_bad_input(void)
{
    br_env_t *e = NULL;
    CHECK_STATUS(br_env_create(&e, "pong", 3, 4, 1), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "pong") && strstr(br_errmsg(), "switch-bridges"));
    CHECK_STATUS(br_env_create(&e, "switch", 1, 4, 1), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "at least 2"));
    CHECK_STATUS(br_env_create(&e, "simple-reference", 3, 4, 1), BR_EINVAL);
    CHECK_STATUS(br_env_create(&e, "switch", 3, 0, 1), BR_EINVAL);
    CHECK(e == NULL);
}

static void test_switch_rules(void)
{
    br_env_t *e;
    CHECK_OK(br_env_create(&e, "switch", 3, 1, 7));
    CHECK_INT(e->spec.episode_limit, 6);
    CHECK_INT(e->spec.n_actions, 4);
    CHECK_INT(e->spec.state_dim, 7);
    CHECK_INT(e->spec.obs_dim, 2);
    int32_t act[3];

    /* availability: only the prisoner in the room may switch or tell */
    int room = room_of(e, 0);
    CHECK(room >= 0);
    for (int i = 0; i < 3; i++) {
        const uint8_t *av = e->avail + i * 4;
        CHECK_INT(av[BR_SW_NONE], 1);
        CHECK_INT(av[BR_SW_TELL], i == room);
        CHECK_INT(av[BR_SW_ON], i == room);
    }
    CHECK_INT(e->obs[room * 2 + 1], 0); /* light starts off */
    /* a prisoner outside the room telling is rejected */
    memset(act, 0, sizeof act);
    act[(room + 1) % 3] = BR_SW_TELL;
    CHECK_STATUS(br_env_step(e, act), BR_EINVAL);

    /* telling on the first day is always too early: -1, terminal */
    memset(act, 0, sizeof act);
    act[room] = BR_SW_TELL;
    CHECK_OK(br_env_step(e, act));
    CHECK_NEAR(e->reward[0], -1, 0);
    CHECK_INT(e->done[0], 1);
    CHECK_INT(e->terminated[0], 1);
    CHECK_INT(e->t[0], 1);

    /* doing nothing for 4n-6 = 6 days: reward 0, done by the limit, not terminal */
    br_env_reset(e);
    for (int d = 0; d < 6; d++) {
        CHECK_INT(e->done[0], 0);
        memset(act, 0, sizeof act);
        CHECK_OK(br_env_step(e, act));
        CHECK_NEAR(e->reward[0], 0, 0);
    }
    CHECK_INT(e->done[0], 1);
    CHECK_INT(e->terminated[0], 0);
    CHECK_INT(e->t[0], 6);

    /* the light: switched on by today's prisoner, seen by tomorrow's, off again */
    br_env_reset(e);
    room = room_of(e, 0);
    memset(act, 0, sizeof act);
    act[room] = BR_SW_ON;
    br_env_step(e, act);
    room = room_of(e, 0);
    CHECK_INT(e->obs[room * 2 + 1], 1);
    CHECK_INT(e->state[3], 1);
    for (int i = 0; i < 3; i++)
        if (i != room) CHECK_INT(e->obs[i * 2 + 1], 0); /* outside the room: nothing seen */
    memset(act, 0, sizeof act);
    act[room] = BR_SW_OFF;
    br_env_step(e, act);
    CHECK_INT(e->obs[room_of(e, 0) * 2 + 1], 0);
    br_env_free(e);

    /* many episodes against a hand-written referee: tell as soon as the tracked set is full
     * (+1) or, in half the episodes, one day before it is (-1 unless already full). */
    CHECK_OK(br_env_create(&e, "switch", 3, 64, 11));
    int wins = 0, losses = 0, timeouts = 0, mismatches = 0, state_bad = 0;
    for (int rep = 0; rep < 20; rep++) {
        br_env_reset(e);
        uint32_t seen[64] = {0};
        int early[64];
        for (int b = 0; b < 64; b++) early[b] = (b + rep) % 2;
        int32_t acts[64 * 3];
        while (1) {
            int alive = 0;
            for (int b = 0; b < 64; b++) {
                memset(acts + 3 * b, 0, 3 * sizeof(int32_t));
                if (e->done[b]) continue;
                alive = 1;
                int r = room_of(e, b);
                /* state: visited bits = earlier days, one-hot in_room = today */
                for (int i = 0; i < 3; i++) {
                    state_bad += e->state[b * 7 + i] != (float)((seen[b] >> i) & 1u);
                    state_bad += e->state[b * 7 + 4 + i] != (float)(i == r);
                }
                uint32_t now = seen[b] | (1u << r);
                int tell = early[b] ? __builtin_popcount(now) >= 2 : now == 7u;
                if (tell) acts[3 * b + r] = BR_SW_TELL;
                seen[b] = now;
            }
            if (!alive) break;
            uint32_t before[64];
            memcpy(before, seen, sizeof before);
            uint8_t was_done[64];
            memcpy(was_done, e->done, 64);
            CHECK_OK(br_env_step(e, acts));
            for (int b = 0; b < 64; b++) {
                if (was_done[b]) continue;
                int told = 0;
                for (int i = 0; i < 3; i++) told |= acts[3 * b + i] == BR_SW_TELL;
                float want = told ? (before[b] == 7u ? 1.0f : -1.0f) : 0.0f;
                mismatches += e->reward[b] != want;
                if (told) {
                    mismatches += !e->terminated[b];
                    wins += want > 0, losses += want < 0;
                } else if (e->done[b]) {
                    timeouts++;
                    mismatches += e->t[b] != 6 || e->terminated[b];
                }
            }
        }
    }
    CHECK_INT(mismatches, 0);
    CHECK_INT(state_bad, 0);
    CHECK(wins > 100 && losses > 100 && timeouts > 50);
    /* the oracle teller's win rate is P(all 3 seen within 6 days) = 540/729 = 0.741 */
    br_env_free(e);
}

static void test_bridges(void)
{
    br_env_t *e;
    CHECK_OK(br_env_create(&e, "switch-bridges", 3, 2, 3));
    CHECK_INT(e->spec.episode_limit, 9);
    CHECK_INT(e->spec.n_actions, 6);
    CHECK_INT(e->spec.obs_dim, 5);
    CHECK_INT(e->spec.state_dim, 12 + 7);
    int32_t act[6];
    /* on the bridge: only left/right; position visible; nobody in the room */
    for (int i = 0; i < 3; i++) {
        const uint8_t *av = e->avail + i * 6;
        CHECK(av[BR_SW_LEFT] && av[BR_SW_RIGHT] && !av[BR_SW_NONE] && !av[BR_SW_TELL]);
        CHECK_INT(e->obs[i * 5 + 0], 1);
        CHECK_INT(e->obs[i * 5 + 3], 0);
    }
    /* env 0: everyone right three times reaches the riddle; env 1: agent 2 steps left */
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 6; i++) act[i] = BR_SW_RIGHT;
        if (k == 1) act[3 + 2] = BR_SW_LEFT;
        br_env_step_unchecked(e, act);
        if (k == 1) {
            CHECK_NEAR(e->reward[1], -1, 0);
            CHECK(e->done[1] && e->terminated[1]);
            CHECK_INT(e->t[1], 2);
        }
        CHECK_NEAR(e->reward[0], 0, 0);
        CHECK_INT(e->done[0], 0);
        for (int i = 0; i < 3; i++) CHECK_INT(e->state[i * 4 + k + 1], 1);
    }
    CHECK_INT(e->t[0], 3);
    int room = room_of(e, 0);
    CHECK(room >= 0);
    CHECK_INT(e->avail[room * 6 + BR_SW_TELL], 1);
    CHECK_INT(e->avail[room * 6 + BR_SW_RIGHT], 0);
    for (int i = 0; i < 3; i++) CHECK_INT(e->state[12 + i], 0); /* nobody visited yet */
    /* 6 riddle days doing nothing: the limit 4n-6+3 = 9 */
    for (int d = 0; d < 6; d++) {
        CHECK_INT(e->done[0], 0);
        memset(act, 0, sizeof act);
        CHECK_OK(br_env_step(e, act));
    }
    CHECK(e->done[0] && !e->terminated[0]);
    CHECK_INT(e->t[0], 9);
    br_env_free(e);
}

/* P(all n prisoners in the room within D days), today counting: inclusion-exclusion */
static double oracle_return(int n, int D)
{
    double p = 0, c = 1; /* c = C(n, k) */
    for (int k = 0; k <= n; k++) {
        p += (k & 1 ? -1 : 1) * c * pow((double)(n - k) / n, D);
        c = c * (n - k) / (k + 1);
    }
    return p;
}

/* The oracle that reads the state (walks right on the bridge, tells as soon as every prisoner
 * has been in the room) earns P(all n seen within 4n-6 days) on switch and switch-bridges-L
 * for n = 3..5; silent episodes end exactly at the limit 4n-6+L, not terminal. */
static void test_switch_oracle_n_agents(void)
{
    CHECK_NEAR(oracle_return(3, 6), 540.0 / 729.0, 1e-12);
    const char *names[] = {"switch", "switch-bridges", "switch-bridges-5", "switch-bridges-1"};
    const int lens[] = {0, 3, 5, 1};
    br_env_spec_t sp;
    CHECK_STATUS(br_env_spec(&sp, "switch-bridges-0", 3), BR_EINVAL);
    CHECK_STATUS(br_env_spec(&sp, "switch-bridges-12", 3), BR_EINVAL);
    for (int k = 0; k < 4; k++)
        for (int n = 3; n <= 5; n++) {
            const int L = lens[k], B = 4000, limit = 4 * n - 6 + L;
            br_env_t *e;
            CHECK_OK(br_env_create(&e, names[k], n, B, 11 + (uint64_t)n));
            CHECK(!strcmp(e->spec.name, names[k]));
            CHECK_INT(e->spec.bridge_len, L);
            CHECK_INT(e->spec.episode_limit, limit);
            CHECK_INT(e->spec.obs_dim, L + 2);
            CHECK_INT(e->spec.state_dim, n * (L ? L + 1 : 0) + 2 * n + 1);
            int32_t *act = calloc((size_t)B * n, sizeof *act);
            double ret = 0;
            int steps = 0, told = 0, bad = 0;
            const int vis = L ? n * (L + 1) : 0; /* visited bits, then light, then room */
            while (1) {
                int alive = 0;
                for (int b = 0; b < B; b++) alive |= !e->done[b];
                if (!alive) break;
                for (int b = 0; b < B; b++) {
                    const float *st = e->state + (size_t)b * e->spec.state_dim;
                    const int bridge = L && e->t[b] < L;
                    int room = -1, all = 1;
                    for (int i = 0; i < n; i++) if (st[vis + n + 1 + i] == 1) room = i;
                    for (int i = 0; i < n; i++) all &= st[vis + i] == 1 || i == room;
                    for (int i = 0; i < n; i++)
                        act[(size_t)b * n + i] = bridge ? BR_SW_RIGHT
                                               : i == room && all ? BR_SW_TELL : BR_SW_NONE;
                    bad += !bridge && room < 0; /* exactly one prisoner in the room */
                }
                br_env_step_unchecked(e, act);
                steps++;
            }
            for (int b = 0; b < B; b++) {
                ret += e->reward[b];
                told += e->terminated[b];
                bad += e->reward[b] < 0;                      /* the oracle never tells too early */
                bad += !e->terminated[b] && e->t[b] != limit; /* silent: ends at the limit */
                bad += e->t[b] <= L;                          /* every episode reaches the riddle */
            }
            CHECK_INT(bad, 0);
            CHECK_INT(steps, limit);
            const double p = oracle_return(n, 4 * n - 6);
            CHECK_NEAR(ret / B, p, 4 * sqrt(p * (1 - p) / B)); /* 4 standard errors */
            CHECK_INT(told, (int)ret);
            free(act);
            br_env_free(e);
        }
}

static void test_particle(void)
{
    br_env_t *e;
    CHECK_OK(br_env_create(&e, "simple-reference", 2, 1, 5));
    CHECK_INT(e->spec.n_actions, 50);
    CHECK_INT(e->spec.obs_dim, 21);
    CHECK_INT(e->spec.state_dim, 40);
    float p0[2][2], lm[3][2];
    int goal[2] = {-1, -1};
    for (int i = 0; i < 2; i++) {
        p0[i][0] = e->state[2 * i], p0[i][1] = e->state[2 * i + 1];
        CHECK(e->state[4 + 2 * i] == 0 && e->state[5 + 2 * i] == 0);
        for (int k = 0; k < 3; k++)
            if (e->state[14 + 3 * i + k] == 1) goal[i] = k;
        CHECK(goal[i] >= 0);
    }
    for (int k = 0; k < 3; k++) lm[k][0] = e->state[8 + 2 * k], lm[k][1] = e->state[9 + 2 * k];
    /* initial observation: no velocity, relative landmarks, own goal colour, silent channel */
    const float colors[3][3] = {{.75f, .25f, .25f}, {.25f, .75f, .25f}, {.25f, .25f, .75f}};
    for (int i = 0; i < 2; i++) {
        const float *o = e->obs + i * 21;
        CHECK_NEAR(o[0], 0, 0);
        CHECK_NEAR(o[2 + 2 * 1], lm[1][0] - p0[i][0], 1e-6);
        CHECK_NEAR(o[3 + 2 * 2], lm[2][1] - p0[i][1], 1e-6);
        for (int c = 0; c < 3; c++) CHECK_NEAR(o[8 + c], colors[goal[i]][c], 0);
        for (int s = 0; s < 10; s++) CHECK_NEAR(o[11 + s], 0, 0);
    }
    /* agent 0 pushes +x with symbol 7, agent 1 pushes -y with symbol 2, twice:
     * v1 = 5 * 0.1 = 0.5, p1 = p0 + 0.05;  v2 = 0.5 * 0.75 + 0.5 = 0.875, p2 = p1 + 0.0875 */
    int32_t act[2] = {1 * 10 + 7, 4 * 10 + 2};
    CHECK_OK(br_env_step(e, act));
    CHECK_NEAR(e->state[4], 0.5, 1e-6);
    CHECK_NEAR(e->state[0], p0[0][0] + 0.05, 1e-6);
    CHECK_NEAR(e->state[1], p0[0][1], 1e-6);
    CHECK_NEAR(e->state[7], -0.5, 1e-6);
    CHECK_NEAR(e->state[3], p0[1][1] - 0.05, 1e-6);
    CHECK_NEAR(e->obs[11 + 2], 1, 0);      /* agent 0 hears agent 1's symbol 2 */
    CHECK_NEAR(e->obs[21 + 11 + 7], 1, 0); /* agent 1 hears agent 0's symbol 7 */
    CHECK_OK(br_env_step(e, act));
    float x0 = p0[0][0] + 0.05f + 0.0875f, y1 = p0[1][1] - 0.05f - 0.0875f;
    CHECK_NEAR(e->state[4], 0.875, 1e-6);
    CHECK_NEAR(e->state[0], x0, 1e-5);
    CHECK_NEAR(e->state[3], y1, 1e-5);
    CHECK_NEAR(e->obs[0], 0.875, 1e-6);
    /* reward: agent 0's goal_b is for agent 1 and vice versa, squared distances */
    float pos[2][2] = {{x0, p0[0][1]}, {p0[1][0], y1}};
    double want = 0;
    for (int i = 0; i < 2; i++) {
        double dx = pos[1 - i][0] - lm[goal[i]][0], dy = pos[1 - i][1] - lm[goal[i]][1];
        want -= dx * dx + dy * dy;
    }
    CHECK_NEAR(e->reward[0], want, 1e-5);
    /* 25 steps, never terminal */
    for (int k = 2; k < 25; k++) {
        CHECK_INT(e->done[0], 0);
        br_env_step_unchecked(e, act);
    }
    CHECK(e->done[0] && !e->terminated[0]);
    br_env_free(e);
}

static void test_determinism(void)
{
    const char *names[3] = {"switch", "switch-bridges", "simple-reference"};
    for (int k = 0; k < 3; k++) {
        br_env_t *a, *b;
        CHECK_OK(br_env_create(&a, names[k], 0, 8, 42));
        CHECK_OK(br_env_create(&b, names[k], 0, 8, 42));
        int n = a->spec.n_agents, A = a->spec.n_actions, same = 1;
        int32_t *act = calloc((size_t)8 * n, sizeof *act);
        br_rng_t r;
        br_rng_seed(&r, 9);
        for (int s = 0; s < 40; s++) {
            for (int j = 0; j < 8 * n; j++) {
                int c;
                do c = (int)br_rng_below(&r, (uint64_t)A);
                while (!a->avail[(size_t)j * A + c]);
                act[j] = c;
            }
            br_env_step_unchecked(a, act);
            br_env_step_unchecked(b, act);
            same &= !memcmp(a->state, b->state, 8 * sizeof(float) * a->spec.state_dim);
            same &= !memcmp(a->reward, b->reward, 8 * sizeof(float));
            for (int j = 0; j < 8; j++)
                if (a->done[j]) br_env_reset_one(a, j), br_env_reset_one(b, j);
        }
        CHECK(same);
        free(act);
        br_env_free(a);
        br_env_free(b);
    }
}

int main(void)
{
    test_bad_input();
    test_switch_rules();
    test_bridges();
    test_switch_oracle_n_agents();
    test_particle();
    test_determinism();
    return th_exit();
}

"""Host profiles: run the suite as another kind of the project's machines, on any machine (issue 27).

A profile sets what differs between the kinds as far as this code can see it:
whether TensorFlow uses oneDNN (``TF_ENABLE_ONEDNN_OPTS``, read when TensorFlow
starts) and the CPU flags that ``--precision auto`` reads (``NST_CPU_FLAGS``,
see nst.host.precision).  It cannot change the kernels oneDNN itself picks for the
real CPU, nor the machine's speed; those differences are why the tests that
depend on the host are marked ``host`` and run under every profile in CI.

    pytest --host-profile zen3 -m host     # or NST_HOST_PROFILE=zen3 make test
"""

# First flags lines of /proc/cpuinfo, trimmed to what matters here.
XEON_AMX = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr avx2 fma avx512f avx512bw avx512_bf16 "
            "amx_bf16 amx_tile amx_int8")
XEON_AVX512_BF16 = "fpu vme avx2 fma avx512f avx512bw avx512_bf16"
EPYC_ZEN3 = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr fma avx2 sha_ni"
EPYC_ZEN4 = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr fma avx2 sha_ni avx512f avx512bw avx512_bf16"
AVX512_NO_BF16 = "fpu vme avx2 fma avx512f avx512bw"  # an Ice Lake Xeon, say

# name -> (environment it sets, what it stands for)
PROFILES = {
    "zen3": ({"TF_ENABLE_ONEDNN_OPTS": "0", "NST_CPU_FLAGS": EPYC_ZEN3},
             "AMD EPYC Zen 3: AVX2 only, oneDNN off, auto = fp32"),
    "onednn-fp32": ({"TF_ENABLE_ONEDNN_OPTS": "1", "NST_CPU_FLAGS": AVX512_NO_BF16},
                    "AVX-512 without bf16 units: oneDNN on, auto = fp32"),
    "zen4": ({"TF_ENABLE_ONEDNN_OPTS": "1", "NST_CPU_FLAGS": EPYC_ZEN4},
             "AMD EPYC Zen 4: AVX-512 with avx512_bf16, oneDNN on, auto = bf16"),
    "sapphire-rapids": ({"TF_ENABLE_ONEDNN_OPTS": "1", "NST_CPU_FLAGS": XEON_AMX},
                        "Intel Xeon Sapphire Rapids: AMX-BF16, oneDNN on, auto = bf16"),
}
# What .ci/run runs the host-marked tests under, besides the machine as it is: the three
# combinations the code can tell apart (oneDNN off + fp32, oneDNN on + fp32, oneDNN on + bf16).
CI_PROFILES = ("zen3", "onednn-fp32", "zen4")

# Tolerances measured across the kinds, for tests whose numbers depend on the kernels.
# The content cost of the first image, which is the content photo itself, as a share of the total: not
# exactly zero where the target and the image's features come from different kernels.  Measured at 96 px
# (total about 153): 0.0 in fp32 with oneDNN on and off (Xeon); 7.1e-6 in bf16 (Xeon and EPYC Zen 4)
# and 1.0e-5 (Xeon, oneDNN off); one step later the content cost is already 0.025-0.06.
NO_CONTENT_COST = 1e-6


if __name__ == "__main__":  # `make test-hosts` reads the profiles CI runs from here
    print(" ".join(CI_PROFILES))

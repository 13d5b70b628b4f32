using System.Diagnostics;
using System.Globalization;

namespace QubesWeb.Benchmarks;

public sealed record Sample(string Name, double[] Milliseconds)
{
    public double Median => Percentile(0.5);
    public double P95 => Percentile(0.95);

    public double Percentile(double p)
    {
        var sorted = Milliseconds.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        var idx = (int)Math.Ceiling(p * sorted.Length) - 1;
        return sorted[Math.Clamp(idx, 0, sorted.Length - 1)];
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Name,-40} median {Median,8:0.000} ms   p95 {P95,8:0.000} ms   (n={Milliseconds.Length})");
}

public static class Measure
{
    /// <summary>Runs the two alternately, so drift in the machine's load touches both alike.</summary>
    public static async Task<(Sample A, Sample B)> AlternateAsync(string nameA, Func<Task> a, string nameB, Func<Task> b, int warmup, int runs)
    {
        for (var i = 0; i < warmup; i++) { await a(); await b(); }
        var ta = new double[runs];
        var tb = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            await a();
            ta[i] = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            await b();
            tb[i] = sw.Elapsed.TotalMilliseconds;
        }
        return (new Sample(nameA, ta), new Sample(nameB, tb));
    }
}

using System.Diagnostics;
using System.Globalization;
using QubesWeb.Data.Jobs;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;

namespace QubesWeb.Benchmarks;

/// <summary>
/// Issue: an AppVM start (root snapshot + volatile volume + define + start) and a template commit, each against the
/// bare qemu-img commands doing the same disk work, run in the same process on the same backing file.
/// Goal: at most 1.5x for both.
/// </summary>
public static class RevisionsBenchmark
{
    private const long MiB = 1024 * 1024;
    private const long VolatileBytes = 10L * 1024 * MiB; // the demo's volatile volume, as the start job makes it
    private const string AppVm = "research";             // a halted demo AppVM on fedora-42
    private const string AppVmTemplate = "fedora-42";
    private const string Template = "debian-13";         // a halted demo template
    private const long WrittenMiB = 64;
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(2);

    public static async Task RunAsync(int starts = 15, int commits = 8)
    {
        // A stop the kill job makes also raises the stop event, whose own commit is refused while the job holds the
        // qube's lock (RootVolumeEvents); EF logs that refused lock insert as errors with a stack trace, so they are muted.
        await using var host = await ConsoleHost.StartAsync(extraArgs:
        [
            "--Logging:LogLevel:Microsoft.EntityFrameworkCore.Update=None",
            "--Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command=None",
        ]);
        var pool = Path.Combine(host.DataDir, "pool");
        // Same file system as the pool, so renames and syncs cost the same.
        var scratch = Path.Combine(host.DataDir, "bench-baseline");
        Directory.CreateDirectory(scratch);
        Console.WriteLine($"Revisions benchmark: the embedded demo in-process, pool {pool}");
        Console.WriteLine($"qemu-img {(await Tool("qemu-img", "--version")).Split('\n')[0].Replace("qemu-img version ", "", StringComparison.Ordinal)}");

        await AppVmStartAsync(host, pool, scratch, starts);
        await TemplateCommitAsync(host, pool, scratch, commits);
    }

    /// <summary>The "start" job of a halted AppVM against the two qemu-img create commands it runs.</summary>
    private static async Task AppVmStartAsync(ConsoleHost host, string pool, string scratch, int runs)
    {
        var estate = host.Get<EstateMonitor>();
        if (estate.StateOf(AppVm) != RunState.Halted) await SucceedsAsync(host, JobKind.Kill, AppVm, timeout: JobTimeout);
        var backing = await CurrentRevisionAsync(host, pool, AppVmTemplate);
        Console.WriteLine();
        Console.WriteLine($"AppVM start: '{AppVm}' on {AppVmTemplate} ({Path.GetFileName(backing)}); the kill between starts is not timed");

        var snap = Path.Combine(scratch, RootFiles.Snapshot);
        var vol = Path.Combine(scratch, "volatile.qcow2");
        async Task Baseline()
        {
            // What PrepareStartAsync does on disk: each image made beside its path, then renamed into place.
            await Tool("qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", "--", snap + ".new");
            File.Move(snap + ".new", snap, overwrite: true);
            await Tool("qemu-img", "create", "-q", "-f", "qcow2", "--", vol + ".new", VolatileBytes.ToString(CultureInfo.InvariantCulture));
            File.Move(vol + ".new", vol, overwrite: true);
        }

        const int warmup = 10; // steady state: the JIT has tiered up the paths a long-running console uses
        var tb = new List<double>();
        var tc = new List<double>();
        var tr = new List<double>();
        for (var i = 0; i < warmup + runs; i++)
        {
            File.Delete(snap);
            File.Delete(vol);
            var sw = Stopwatch.StartNew();
            await Baseline();
            var b = sw.Elapsed.TotalMilliseconds;

            sw.Restart();
            var job = await SucceedsAsync(host, JobKind.Start, AppVm, timeout: JobTimeout);
            var c = sw.Elapsed.TotalMilliseconds;

            await SucceedsAsync(host, JobKind.Kill, AppVm, timeout: JobTimeout);
            // Let the stop event's own settling finish before the next start (untimed).
            await Task.Delay(200);
            if (i < warmup) continue;
            tb.Add(b);
            tc.Add(c);
            tr.Add(RunMilliseconds(job));
        }
        var baseline = new Sample("bare qemu-img: snapshot + volatile", [.. tb]);
        var console = new Sample($"console: start job ({AppVm})", [.. tc]);
        Console.WriteLine(baseline);
        Console.WriteLine(console);
        Console.WriteLine(new Sample("  of which the job's run (job times)", [.. tr]));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ratio start/qemu-img: median {console.Median / baseline.Median:0.00}x   p95 {console.P95 / baseline.P95:0.00}x   (goal <= 1.5x)"));
    }

    /// <summary>
    /// The "kill" job of a running template with <see cref="WrittenMiB"/> MiB in its dirty overlay (kill, then the
    /// commit as the next revision) against the disk commands that commit runs on an equal overlay.
    /// </summary>
    private static async Task TemplateCommitAsync(ConsoleHost host, string pool, string scratch, int runs)
    {
        var revisions = host.Get<RootRevisions>();
        var estate = host.Get<EstateMonitor>();
        if (estate.StateOf(Template) != RunState.Halted) await SucceedsAsync(host, JobKind.Kill, Template, timeout: JobTimeout);
        // Keeps every revision this run makes: merging an old revision is retention, not the commit being measured.
        await host.Get<RootRetention>().SetRevisionsToKeepAsync(Template, RootRetention.MaxRevisionsToKeep);
        var dirty = Path.Combine(pool, Template, RootFiles.Dirty);
        Console.WriteLine();
        Console.WriteLine($"Template commit: '{Template}', {WrittenMiB} MiB written into its dirty overlay with qemu-io before each stop (untimed);");
        Console.WriteLine($"  revisions_to_keep={RootRetention.MaxRevisionsToKeep} so no old revision is merged during the run;");
        Console.WriteLine("  a 'Refused commit' warning per kill is expected: the stop event's own commit, refused while the kill job holds the lock");

        var overlay = Path.Combine(scratch, RootFiles.Dirty);
        var committedDir = Path.Combine(scratch, "committed");
        Directory.CreateDirectory(committedDir);

        const int warmup = 1;
        var tb = new List<double>();
        var tc = new List<double>();
        var ts = new List<double>();
        var tr = new List<double>();
        for (var i = 0; i < warmup + runs; i++)
        {
            var pattern = (byte)(0x60 + i);

            // Baseline: an equal overlay on the same revision, then what the commit runs (HasOwnDataAsync's map, qemu-img check, RenameCheckedOverlay).
            var backing = await CurrentRevisionAsync(host, pool, Template);
            var revision = Path.Combine(committedDir, RootFiles.Revision(i + 2));
            File.Delete(overlay);
            await Tool("qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", "--", overlay);
            await QemuImg.WritePatternAsync(overlay, pattern, 0, WrittenMiB * MiB);
            var sw = Stopwatch.StartNew();
            var map = await Tool("qemu-img", "map", "-U", "--output=json", "-f", "qcow2", "--", overlay);
            if (!map.Contains("\"depth\": 0", StringComparison.Ordinal)) throw new InvalidOperationException("The overlay holds no data of its own.");
            await Tool("qemu-img", "check", "-q", "-f", "qcow2", "--", overlay);
            Durable.SyncFile(overlay);
            Durable.Rename(overlay, revision);
            var b = sw.Elapsed.TotalMilliseconds;
            File.Delete(revision);

            // The console: start the template (untimed), write as a guest would (untimed), kill it (timed: kill + commit).
            await SucceedsAsync(host, JobKind.Start, Template, timeout: JobTimeout);
            await QemuImg.WritePatternAsync(dirty, pattern, 0, WrittenMiB * MiB);
            var before = (await revisions.HistoryAsync(Template))!.Current;
            sw.Restart();
            var job = await SucceedsAsync(host, JobKind.Kill, Template, timeout: JobTimeout);
            var c = sw.Elapsed.TotalMilliseconds;
            var after = (await revisions.HistoryAsync(Template))!.Current;
            if (after != before + 1) throw new InvalidOperationException($"The kill made no new revision ({before} -> {after}).");
            // The job's own log dates the kill's end; from there to the job's end is settling the volumes.
            var killed = job.Log.FirstOrDefault(l => l.Text.StartsWith("Killed ", StringComparison.Ordinal))?.TimeUtc;
            var settle = killed is { } k && job.FinishedUtc is { } f ? (f - k).TotalMilliseconds : double.NaN;
            // The commit's measure of reclaimable space runs a moment later, off the job: not during the next kill.
            await host.Get<RootMeasures>().MeasuresSettledAsync();
            if (i < warmup) continue;
            tb.Add(b);
            tc.Add(c);
            ts.Add(settle);
            tr.Add(RunMilliseconds(job));
        }
        var baseline = new Sample($"bare qemu-img: map + check + sync + rename", [.. tb]);
        var console = new Sample($"console: kill job (kill + commit)", [.. tc]);
        var settling = new Sample($"  of which after 'Killed' (job log)", [.. ts]);
        Console.WriteLine(baseline);
        Console.WriteLine(console);
        Console.WriteLine(new Sample("  of which the job's run (job times)", [.. tr]));
        Console.WriteLine(settling);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ratio kill job/qemu-img: median {console.Median / baseline.Median:0.00}x   p95 {console.P95 / baseline.P95:0.00}x   (goal <= 1.5x)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ratio settling only/qemu-img: median {settling.Median / baseline.Median:0.00}x   (job log times, ms resolution)"));
        var history = (await revisions.HistoryAsync(Template))!;
        Console.WriteLine($"{Template} now at revision {history.Current} ({history.Revisions.Count} kept)");
    }

    private static async Task<string> CurrentRevisionAsync(ConsoleHost host, string pool, string template)
    {
        var history = await host.Get<RootRevisions>().HistoryAsync(template)
            ?? throw new InvalidOperationException($"{template} has no revisions.");
        var path = Path.Combine(pool, template, RootFiles.Revision(history.Current));
        if (!File.Exists(path)) throw new FileNotFoundException($"The current revision of {template} is missing.", path);
        return path;
    }

    /// <summary>From the engine taking the job to its end, as the job records them (queueing and the wait excluded).</summary>
    private static double RunMilliseconds(Job job) =>
        job is { StartedUtc: { } s, FinishedUtc: { } f } ? (f - s).TotalMilliseconds : double.NaN;

    /// <summary>A bare tool run: an argument list, no shell; its standard output.</summary>
    private static async Task<string> Tool(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        // qemu-img check exits 3 for leaked clusters only, which the console accepts too.
        if (p.ExitCode != 0 && !(args is ["check", ..] && p.ExitCode == 3))
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {await stderr}");
        await stderr;
        return await stdout;
    }
}

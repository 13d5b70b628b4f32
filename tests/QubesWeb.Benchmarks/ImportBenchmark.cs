// A template imported from a 2 GiB image holding 1 GiB of data, against `qemu-img convert` of the same file made
// durable (fsync), in the same run. The import also reads the whole file for its digest first, before it writes
// anything. Goal: at most 1.1x.
using QubesWeb.Data.Jobs;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Templates;

namespace QubesWeb.Benchmarks;

public static class ImportBenchmark
{
    private const long MiB = 1024 * 1024, GiB = 1024 * MiB;
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(5);

    public static async Task RunAsync(int runs = 5)
    {
        await using var host = await ConsoleHost.StartAsync(extraArgs:
        [
            "--Logging:LogLevel:Microsoft.EntityFrameworkCore.Update=None",
            "--Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command=None",
        ]);
        var images = Path.Combine(host.DataDir, "images");
        var scratch = Path.Combine(host.DataDir, "bench-baseline");
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(scratch);
        var image = Path.Combine(images, "bench-2g.qcow2");
        await QemuImg.CreateAsync(image, 2 * GiB);
        await QemuImg.WritePatternAsync(image, 0x5c, 512 * MiB, GiB);
        var info = await QemuImg.InfoAsync(image);
        Console.WriteLine($"Import benchmark: the embedded demo in-process; image {image}: {info.VirtualSizeBytes / MiB} MiB virtual, {new FileInfo(image).Length / MiB} MiB file");
        Console.WriteLine("Each timed run starts from a quiet disk, with the image out of the page cache (see CopyBenchmark.TimedAsync).");
        var sha256 = await ImageChecksum.ComputeAsync(image, ChecksumAlgorithm.Sha256, null, CancellationToken.None);
        var sha512 = await ImageChecksum.ComputeAsync(image, ChecksumAlgorithm.Sha512, null, CancellationToken.None);

        var durable = new List<double>();
        var job256 = new List<double>();
        var job512 = new List<double>();
        List<JobLogLine> lines = [];
        for (var i = 0; i < runs + 1; i++)
        {
            var target = Path.Combine(scratch, $"convert-{i}.qcow2");
            var d = await CopyBenchmark.TimedAsync(image, async () => { await QemuImg.ConvertAsync(image, target); Durable.SyncFile(target); });
            File.Delete(target);
            Job last = null!;
            var j = await CopyBenchmark.TimedAsync(image, async () => last = await ImportAsync(host, $"bench-import-{i}", image, sha256));
            // Read before the removal, which takes the qube's tasks with it.
            lines = (await host.Get<JobEngine>().GetAsync(last.Id))!.Log.OrderBy(l => l.Id).ToList();
            await SucceedsAsync(host, JobKind.Remove, $"bench-import-{i}", timeout: JobTimeout);
            var k = await CopyBenchmark.TimedAsync(image, async () => await ImportAsync(host, $"bench-import512-{i}", image, sha512));
            await SucceedsAsync(host, JobKind.Remove, $"bench-import512-{i}", timeout: JobTimeout);
            Console.WriteLine($"  run {i}{(i == 0 ? " (warm-up)" : "")}: convert + fsync {d,6:0} ms, import (SHA-256) {j,6:0} ms, import (SHA-512) {k,6:0} ms");
            if (i == 0) continue;
            durable.Add(d);
            job256.Add(j);
            job512.Add(k);
        }
        Console.WriteLine();
        Console.WriteLine("Import of a 2 GiB image with 1 GiB of data (each run from a quiet disk and an uncached image):");
        CopyBenchmark.Line("qemu-img convert + fsync of the copy", durable);
        CopyBenchmark.Line("import job, SHA-256 (enqueue to done)", job256);
        CopyBenchmark.Line("import job, SHA-512 (enqueue to done)", job512);
        CopyBenchmark.Ratio("import (SHA-256) / convert + fsync", job256, durable, 1.1);
        CopyBenchmark.Ratio("import (SHA-512) / convert + fsync", job512, durable, 1.1);
        Console.WriteLine("  the last SHA-256 import's log:");
        foreach (var l in lines) Console.WriteLine($"    {(l.TimeUtc - lines[0].TimeUtc).TotalMilliseconds,6:0} ms  {l.Text}");
    }

    private static Task<Job> ImportAsync(ConsoleHost host, string name, string image, string digest) =>
        SucceedsAsync(host, JobKind.Import, name, new ImportTemplateRequest(image, "black", "debian", digest), JobTimeout);
}

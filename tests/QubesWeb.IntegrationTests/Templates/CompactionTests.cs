// Root compaction on real qcow2 files: it wins back what `qemu-img convert` of the same chain wins back, the data
// read the same, it is refused while the template runs, and a console killed during the convert or at the swap
// leaves a template that starts and reads the same.
using Microsoft.Extensions.Options;
using QubesWeb.Data.Qubes;
using QubesWeb.Hosting;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Storage;

namespace QubesWeb.IntegrationTests.Templates;

public sealed class CompactionTests
{
    private const long MiB = 1L << 20, Cluster = 64 * 1024;

    private static string FileOf(string dataDir, string qube, string file) => Path.Combine(dataDir, "pool", qube, file);

    /// <summary>
    /// debian-13 with 64 MiB written in one update, then 48 MiB of it zeroed (write -z -u) and 8 MiB more discarded
    /// in the next: space a root never gives back by itself. mail is shut down so no revision is in use.
    /// </summary>
    private static async Task<string> WastefulTemplateAsync(ConsoleHost host)
    {
        var dataDir = host.DataDir;
        await SucceedsAsync(host, JobKind.Shutdown, "mail");
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        await QemuImg.WritePatternAsync(FileOf(dataDir, "debian-13", RootFiles.Dirty), 0xaa, 64 * MiB, 64 * MiB);
        await SucceedsAsync(host, JobKind.Shutdown, "debian-13");
        await SucceedsAsync(host, JobKind.Start, "debian-13");
        var dirty = FileOf(dataDir, "debian-13", RootFiles.Dirty);
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuIoPath, ["-f", "qcow2", "-c", $"write -z -u {64 * MiB} {48 * MiB}", "--", dirty]);
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuIoPath, ["-f", "qcow2", "-c", $"discard {112 * MiB} {8 * MiB}", "--", dirty]);
        await SucceedsAsync(host, JobKind.Shutdown, "debian-13");
        // What qemu-img convert alone makes of the same chain, for comparison.
        var reference = Path.Combine(dataDir, "reference.qcow2");
        await QemuImg.ConvertAsync(FileOf(dataDir, "debian-13", RootFiles.Revision(3)), reference);
        return reference;
    }

    private static async Task<long> RevisionBytesAsync(string dataDir) =>
        (await Task.WhenAll(Directory.GetFiles(Path.Combine(dataDir, "pool", "debian-13"), "root.*.qcow2")
            .Select(async f => (await QemuImg.InfoAsync(f)).ActualSizeBytes))).Sum();

    [Fact]
    public async Task Compaction_reclaims_what_qemu_img_convert_reclaims_and_the_data_read_the_same()
    {
        await using var host = await ConsoleHost.StartAsync();
        var reference = await WastefulTemplateAsync(host);
        var revisions = host.Get<RootRevisions>();
        var rev3 = FileOf(host.DataDir, "debian-13", RootFiles.Revision(3));
        var (allocated, compacted) = await RootMeasures.MeasureCurrentAsync(rev3, Path.Combine(host.DataDir, "pool"));
        Assert.True(allocated - compacted >= 48 * MiB, $"reclaimable {allocated - compacted}");
        var before = await RevisionBytesAsync(host.DataDir);

        var job = await RunAsync(host, JobKind.Compact, "debian-13", new CompactRequest());

        Assert.True(job.State == JobState.Succeeded, job.Error);
        Assert.Equal(100, job.Progress);
        var chain = await QemuImg.ChainAsync(rev3);
        Assert.Single(chain);
        var referenceSize = (await QemuImg.InfoAsync(reference)).ActualSizeBytes;
        Assert.InRange(chain[0].ActualSizeBytes, referenceSize - Cluster, referenceSize + Cluster);
        Assert.True(await SameDataAsync(reference, rev3));
        var history = (await revisions.HistoryAsync("debian-13"))!;
        Assert.Equal([3], history.Revisions.Select(r => r.Number));
        Assert.EndsWith("(compacted)", history.Revisions[0].Reason);
        var after = await RevisionBytesAsync(host.DataDir);
        Assert.True(before - after >= 48 * MiB, $"won {before - after}");
        // The old layers' files were let go of at once and are unlinked off the job's path, shortly after.
        await FileReaper.IdleAsync();
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(rev3)!, "*" + FileReaper.Suffix));
        Assert.Equal([rev3], Directory.GetFiles(Path.GetDirectoryName(rev3)!, "root.*"));
        Assert.Contains(job.Log, l => l.Text.StartsWith("Compacted revision 3 of debian-13: its revisions took ") && l.Text.Contains("; won "));
        await SucceedsAsync(host, JobKind.Start, "mail");
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuIoPath, ["-r", "-U", "-f", "qcow2", "-c", $"read -P 0xaa {112 * MiB + 8 * MiB} {8 * MiB}", "--",
            FileOf(host.DataDir, "mail", RootFiles.Snapshot)]);
    }

    [Fact]
    public async Task Compaction_is_refused_while_the_template_runs()
    {
        await using var host = await ConsoleHost.StartAsync();
        await SucceedsAsync(host, JobKind.Start, "fedora-42");
        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Compact, "fedora-42", CancellationToken.None));
        Assert.Equal("'fedora-42' is running; shut it down before compacting its root.", error.Message);
    }

    private static async Task<bool> SameDataAsync(string a, string b) =>
        (await ProcessRunner.RunAsync(QemuImg.QemuImgPath, ["compare", "-U", "-q", "--", a, b])).ExitCode == 0;

    /// <summary>
    /// The two states a console killed during a compaction leaves on disk, made exactly: the job still marked
    /// running, and either a half-written compacted copy beside the revision (killed during the convert) or the
    /// compacted file already renamed over it while the inventory still records the old chain (killed at the swap).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_console_killed_during_compaction_leaves_a_template_that_starts_and_reads_the_same(bool afterSwap)
    {
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            string reference;
            var rev3 = FileOf(dataDir, "debian-13", RootFiles.Revision(3));
            var host = await ConsoleHost.StartAsync(dataDir: dataDir);
            try
            {
                reference = await WastefulTemplateAsync(host);
                await using var db = await host.Get<Microsoft.EntityFrameworkCore.IDbContextFactory<Data.InventoryDbContext>>().CreateDbContextAsync();
                var job = new Job { Kind = JobKind.Compact.Name, Target = "debian-13", State = JobState.Running, Progress = 40, Step = "Writing the compacted root: 42%", CreatedUtc = DateTime.UtcNow, StartedUtc = DateTime.UtcNow };
                db.Jobs.Add(job);
                await db.SaveChangesAsync();
                db.Locks.Add(new QubeLock { QubeName = "debian-13", JobId = job.Id, AcquiredUtc = DateTime.UtcNow });
                await db.SaveChangesAsync();
            }
            finally
            {
                await host.StopAsync();
            }
            var part = rev3 + ".compact.part";
            if (afterSwap)
            {
                await QemuImg.ConvertAsync(rev3, part);
                File.Move(part, rev3, overwrite: true);
            }
            else
            {
                await QemuImg.ConvertAsync(rev3, part);
                // Cut short: only the first part of the file was written.
                await using (var f = new FileStream(part, FileMode.Open, FileAccess.Write)) f.SetLength(f.Length / 3);
            }

            await using var again = await ConsoleHost.StartAsync(dataDir: dataDir);

            Assert.True(await SameDataAsync(reference, rev3));
            Assert.False(File.Exists(part));
            var history = (await again.Get<RootRevisions>().HistoryAsync("debian-13"))!;
            Assert.Equal(3, history.Current);
            Assert.Equal(afterSwap ? null : 2, history.Revisions.Single(r => r.Number == 3).BackingNumber);
            var interrupted = (await again.Get<JobEngine>().QueryAsync(new JobQuery { Target = "debian-13" })).Single(j => JobKind.Compact.Is(j));
            Assert.Equal(JobState.Interrupted, interrupted.State);
            await SucceedsAsync(again, JobKind.Start, "debian-13");
            Assert.True(await SameDataAsync(reference, FileOf(dataDir, "debian-13", RootFiles.Dirty)));
            // And it compacts fine afterwards.
            await SucceedsAsync(again, JobKind.Shutdown, "debian-13");
            await SucceedsAsync(again, JobKind.Compact, "debian-13", new CompactRequest());
            Assert.True(await SameDataAsync(reference, rev3));
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }
}

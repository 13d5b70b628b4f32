// The console killed (SIGKILL, no clean-up) at the worst moments of a commit and of a merge, then started again on
// the same data folder: recovery leaves the template on a consistent revision that starts and reads right, and the
// job that was cut off is marked.
using QubesWeb.Services;
using Microsoft.Extensions.Options;
using QubesWeb.Hosting;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;

namespace QubesWeb.IntegrationTests.Templates;

public sealed class CrashTests
{
    private const long MiB = 1L << 20;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    private static string FileOf(string dataDir, string qube, string file) => Path.Combine(dataDir, "pool", qube, file);

    /// <summary>
    /// A console stopped while debian-13 ran with writes in its dirty overlay: the next start finds it halted (the
    /// test driver, like a rebooted host, forgot it) and commits those writes in a job.
    /// </summary>
    private static async Task<string> DataDirWithUncommittedWritesAsync()
    {
        var dataDir = ConsoleHost.NewDataDir();
        var host = await ConsoleHost.StartAsync(dataDir: dataDir);
        try
        {
            await SucceedsAsync(host, JobKind.Start, "debian-13");
            await QemuImg.WritePatternAsync(FileOf(dataDir, "debian-13", RootFiles.Dirty), 0xab, 32 * MiB, 4 * MiB);
        }
        finally
        {
            await host.StopAsync();
        }
        return dataDir;
    }

    private static async Task KilledAtAsync(string dataDir, string point)
    {
        var psi = ChildProcess.Console(dataDir);
        psi.ArgumentList.Add("--Port=0");
        psi.Environment[FaultPoints.Variable] = point;
        using var run = ChildProcess.Start(psi);
        Assert.True(await run.WaitForExitAsync(Deadline), $"The console did not die at {point}.\nstderr:\n{run.Stderr}");
        Assert.Contains($"{FaultPoints.Variable}={point}: killing the process here", run.Stderr);
        Assert.Equal(137, run.Process.ExitCode);
    }

    private static async Task AssertRecoveredOnRevision2Async(string dataDir)
    {
        await using var host = await ConsoleHost.StartAsync(dataDir: dataDir);
        var revisions = host.Get<RootRevisions>();
        // The recovered or redone commit.
        await Eventually.UntilAsync(host.Get<EstateMonitor>(), async () => (await revisions.HistoryAsync("debian-13"))!.Current == 2
            && !(await host.Get<RootLifecycle>().HasDirtyOverlayAsync("debian-13")), "debian-13 on revision 2");
        var history = (await revisions.HistoryAsync("debian-13"))!;
        Assert.All(history.Revisions, r => Assert.Equal(Data.Qubes.RevisionState.Committed, r.State));
        var rev2 = FileOf(dataDir, "debian-13", RootFiles.Revision(2));
        Assert.Equal([rev2, FileOf(dataDir, "debian-13", RootFiles.Revision(1))], (await QemuImg.ChainAsync(rev2)).Select(l => l.Path));
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuIoPath, ["-r", "-f", "qcow2", "-c", $"read -P 0xab {32 * MiB} {4 * MiB}", "--", rev2]);
        Assert.False(File.Exists(FileOf(dataDir, "debian-13", RootFiles.Dirty)));

        var commits = (await host.Get<JobEngine>().QueryAsync(new JobQuery { Target = "debian-13" })).Where(j => JobKind.Commit.Is(j)).ToList();
        Assert.Contains(commits, j => j.State == JobState.Interrupted);

        await SucceedsAsync(host, JobKind.Start, "debian-13");
        await SucceedsAsync(host, JobKind.Start, "vault");
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuIoPath,
            ["-r", "-U", "-f", "qcow2", "-c", $"read -P 0xab {32 * MiB} {4 * MiB}", "--", FileOf(dataDir, "vault", RootFiles.Snapshot)]);
    }

    [Fact]
    public async Task Killed_after_the_commit_was_journaled_but_before_the_rename_the_commit_is_done_again()
    {
        var dataDir = await DataDirWithUncommittedWritesAsync();
        try
        {
            await KilledAtAsync(dataDir, "commit-journaled");
            Assert.True(File.Exists(FileOf(dataDir, "debian-13", RootFiles.Dirty)));
            await AssertRecoveredOnRevision2Async(dataDir);
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Killed_right_after_the_rename_the_commit_is_finished_at_the_next_start()
    {
        var dataDir = await DataDirWithUncommittedWritesAsync();
        try
        {
            await KilledAtAsync(dataDir, "commit-renamed");
            Assert.False(File.Exists(FileOf(dataDir, "debian-13", RootFiles.Dirty)));
            await AssertRecoveredOnRevision2Async(dataDir);
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Old_image_files_a_stopped_console_let_go_of_but_did_not_delete_yet_go_at_its_next_start()
    {
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            var host = await ConsoleHost.StartAsync(dataDir: dataDir);
            await host.StopAsync();
            // What FileReaper leaves when the process ends before its worker unlinked them: a revision deleted by
            // retention, and a layer a merge or compaction renamed over (linked aside).
            var left = new[]
            {
                FileOf(dataDir, "debian-13", RootFiles.Revision(7) + ".0123abcd" + FileReaper.Suffix),
                FileOf(dataDir, "fedora-42", RootFiles.Revision(1) + ".4567cdef" + FileReaper.Suffix),
            };
            foreach (var f in left) await File.WriteAllBytesAsync(f, new byte[4096]);
            var kept = FileOf(dataDir, "debian-13", RootFiles.Revision(1));
            Assert.True(File.Exists(kept));

            await using var again = await ConsoleHost.StartAsync(dataDir: dataDir);
            Assert.All(left, f => Assert.False(File.Exists(f), f));
            Assert.True(File.Exists(kept));
            Assert.Equal(1, (await again.Get<RootRevisions>().HistoryAsync("debian-13"))!.Current);
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Killed_in_the_middle_of_merging_an_old_revision_away_the_next_start_repairs_the_record()
    {
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            var host = await ConsoleHost.StartAsync(dataDir: dataDir);
            try
            {
                // Two updates while mail runs on revision 1: revision 1 is past revisions_to_keep but in use.
                foreach (var (pattern, offset) in new[] { ((byte)0xb2, 64 * MiB), ((byte)0xb3, 128 * MiB) })
                {
                    await SucceedsAsync(host, JobKind.Start, "debian-13");
                    await QemuImg.WritePatternAsync(FileOf(dataDir, "debian-13", RootFiles.Dirty), pattern, offset, 4 * MiB);
                    await SucceedsAsync(host, JobKind.Shutdown, "debian-13");
                }
                Assert.Equal([3, 2, 1], (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!.Revisions.Select(r => r.Number));
            }
            finally
            {
                await host.StopAsync();
            }

            // The next start finds mail halted, so revision 1 is free to go: the console dies just after the merge's rename.
            await KilledAtAsync(dataDir, "merge-renamed");
            Assert.False(File.Exists(FileOf(dataDir, "debian-13", RootFiles.Revision(1))));

            await using var again = await ConsoleHost.StartAsync(dataDir: dataDir);
            var history = (await again.Get<RootRevisions>().HistoryAsync("debian-13"))!;
            Assert.Equal([3, 2], history.Revisions.Select(r => r.Number));
            Assert.Null(history.Revisions.Single(r => r.Number == 2).BackingNumber);
            var rev3 = FileOf(dataDir, "debian-13", RootFiles.Revision(3));
            Assert.Equal([rev3, FileOf(dataDir, "debian-13", RootFiles.Revision(2))], (await QemuImg.ChainAsync(rev3)).Select(l => l.Path));
            foreach (var (pattern, offset, length) in new[] { ((byte)0x51, 0L, 16 * MiB), ((byte)0xb2, 64 * MiB, 4 * MiB), ((byte)0xb3, 128 * MiB, 4 * MiB) })
                await ProcessRunner.RunCheckedAsync(QemuImg.QemuIoPath, ["-r", "-U", "-f", "qcow2", "-c", $"read -P 0x{pattern:x2} {offset} {length}", "--", rev3]);
            await SucceedsAsync(again, JobKind.Start, "debian-13");
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }
}

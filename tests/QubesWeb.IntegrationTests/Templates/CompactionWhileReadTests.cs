// A compaction of a template whose old revision running qubes still read, on the embedded demo (real qcow2 files,
// libvirt's test driver): an update of fedora-42 makes revision 2 while sys-net, sys-firewall, work and personal run
// on revision 1; the compaction promises revision 1 goes when they stop, and it must: from the inventory and the
// disk, with the bytes that won reported in the compaction's log, also when the console restarts in between. The
// volumes' usage follows each job as it ends, with the one-minute timer set to a day so it cannot be what helps.
using Microsoft.Data.Sqlite;
using QubesWeb.Components.Shared;
using QubesWeb.Services;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Templates;
using QubesWeb.Services.Updates;

namespace QubesWeb.IntegrationTests.Templates;

public sealed class CompactionWhileReadTests
{
    private static readonly string[] Readers = ["personal", "sys-firewall", "sys-net", "work"];
    private const string NoTimer = "--DiskUsageInterval=1.00:00:00";

    private static string FileOf(string dataDir, string qube, string file) => Path.Combine(dataDir, "pool", qube, file);

    private static async Task<RootHistory> HistoryAsync(ConsoleHost host) => (await host.Get<RootRevisions>().HistoryAsync("fedora-42"))!;

    /// <summary>What the inventory says fedora-42's root takes, against what qemu-img says its files take.</summary>
    private static async Task<bool> RootUsageIsCurrentAsync(ConsoleHost host)
    {
        var root = (await host.Get<Inventory>().GetAsync("fedora-42")).Volumes.Single(v => v.Kind == VolumeKind.Root);
        var files = Directory.GetFiles(Path.Combine(host.DataDir, "pool", "fedora-42"), "root*.qcow2");
        var actual = (await Task.WhenAll(files.Select(async f => (await QemuImg.InfoAsync(f)).ActualSizeBytes))).Sum();
        return root.UsageBytes == actual;
    }

    /// <summary>
    /// The issue's steps up to the compaction: fedora-42 updated (revision 2) while its four running qubes read
    /// revision 1, then compacted. Returns the compaction and revision 1's size.
    /// </summary>
    private static async Task<(Job Compaction, long Rev1Bytes, long Rev2Bytes)> UpdateThenCompactWhileReadAsync(ConsoleHost host)
    {
        await SucceedsAsync(host, JobKind.Update, "fedora-42");
        var history = await HistoryAsync(host);
        Assert.Equal(2, history.Current);
        Assert.Equal(Readers, history.Revisions.Single(r => r.Number == 1).UsedBy);
        var before = history.Revisions.Sum(r => r.SizeBytes);

        var compaction = await SucceedsAsync(host, JobKind.Compact, "fedora-42", new CompactRequest());

        history = await HistoryAsync(host);
        var rev1 = history.Revisions.Single(r => r.Number == 1);
        var rev2 = history.Revisions.Single(r => r.Number == 2);
        // Let go of: no longer kept for a revert, only waiting for its readers.
        Assert.True(rev1.Released);
        Assert.False(rev1.Kept);
        Assert.Null(rev2.BackingNumber);
        Assert.True(File.Exists(FileOf(host.DataDir, "fedora-42", RootFiles.Revision(1))));
        // The report says what the root takes while revision 1 waits, and what it will take; never a bare "won 0 B".
        Assert.Contains(compaction.Log, l => l.Text ==
            $"Compacted revision 2 of fedora-42: its revisions took {Format.Bytes(before)}; they take {Format.Bytes(rev1.SizeBytes + rev2.SizeBytes)} "
            + $"while old revision 1 ({Format.Bytes(rev1.SizeBytes)}) is still read, then {Format.Bytes(rev2.SizeBytes)}: "
            + $"won {Format.Bytes(Math.Max(0, before - rev2.SizeBytes))} once it is deleted.");
        Assert.Contains(compaction.Log, l => l.Text ==
            "Old revision 1 stays while personal, sys-firewall, sys-net, work run on it; it is deleted when they have all stopped or restarted, and this log says what that won.");
        return (compaction, rev1.SizeBytes, rev2.SizeBytes);
    }

    private static async Task AssertRevision1GoneAndReportedAsync(ConsoleHost host, long compactionId, long rev1Bytes, long rev2Bytes)
    {
        var history = await HistoryAsync(host);
        Assert.Equal([2], history.Revisions.Select(r => r.Number));
        await FileReaper.IdleAsync();
        var folder = Path.Combine(host.DataDir, "pool", "fedora-42");
        Assert.Equal([FileOf(host.DataDir, "fedora-42", RootFiles.Revision(2))], Directory.GetFiles(folder, "root.*"));
        Assert.Empty(Directory.GetFiles(folder, "*" + FileReaper.Suffix));
        var log = (await host.Get<JobEngine>().GetAsync(compactionId))!.Log;
        Assert.Contains(log, l => l.Text ==
            $"Deleted old revision 1 of fedora-42, let go of by compaction #{compactionId}, now that no running qube reads it: "
            + $"won {Format.Bytes(rev1Bytes)}; its revisions take {Format.Bytes(rev2Bytes)} now (they took {Format.Bytes(rev1Bytes + rev2Bytes)}).");
    }

    [Fact]
    public async Task A_revision_a_compaction_let_go_of_is_deleted_when_its_readers_restart_and_the_log_says_what_it_won()
    {
        await using var host = await ConsoleHost.StartAsync(extraArgs: NoTimer);
        var (compaction, rev1Bytes, rev2Bytes) = await UpdateThenCompactWhileReadAsync(host);

        // Two readers stop: revision 1 stays for the other two.
        await SucceedsAsync(host, JobKind.Shutdown, "work");
        await SucceedsAsync(host, JobKind.Shutdown, "personal");
        Assert.Equal(["sys-firewall", "sys-net"], (await HistoryAsync(host)).Revisions.Single(r => r.Number == 1).UsedBy);
        // "Restart outdated" restarts the others; the last one's stop lets revision 1 go.
        await SucceedsAsync(host, JobKind.RestartOutdated, "fedora-42", new RestartOutdatedRequest());

        await AssertRevision1GoneAndReportedAsync(host, compaction.Id, rev1Bytes, rev2Bytes);
        Assert.All((await HistoryAsync(host)).Revisions, r => Assert.False(r.Released));
        // The usage the pages show follows, without the timer.
        await Eventually.UntilAsync(host.Get<EstateMonitor>(), () => RootUsageIsCurrentAsync(host), "fedora-42's root usage measured after revision 1 went");
    }

    [Fact]
    public async Task The_promise_holds_across_a_restart_of_the_console_between_the_compaction_and_the_readers_stop()
    {
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            long compactionId, rev1Bytes, rev2Bytes;
            var host = await ConsoleHost.StartAsync(dataDir: dataDir, extraArgs: NoTimer);
            try
            {
                Job compaction;
                (compaction, rev1Bytes, rev2Bytes) = await UpdateThenCompactWhileReadAsync(host);
                compactionId = compaction.Id;
            }
            finally
            {
                await host.StopAsync();
            }
            // The promise is in the inventory, not in the stopped process.
            await using (var db = new SqliteConnection($"Data Source={Path.Combine(dataDir, "qubesweb.db")};Pooling=False"))
            {
                await db.OpenAsync();
                var cmd = db.CreateCommand();
                cmd.CommandText = "SELECT Released, ReleasedByJobId FROM Revisions WHERE Path = $path";
                cmd.Parameters.AddWithValue("$path", FileOf(dataDir, "fedora-42", RootFiles.Revision(1)));
                await using var row = await cmd.ExecuteReaderAsync();
                Assert.True(await row.ReadAsync());
                Assert.Equal(1L, row.GetInt64(0));
                Assert.Equal(compactionId, row.GetInt64(1));
            }

            // libvirt's test driver keeps no running domain across the restart, as a host forgets them at reboot: the
            // readers stopped while the console was down, and start-up recovery keeps the promise.
            await using var again = await ConsoleHost.StartAsync(dataDir: dataDir, extraArgs: NoTimer);

            await AssertRevision1GoneAndReportedAsync(again, compactionId, rev1Bytes, rev2Bytes);
            // The demo boots them again, on the compacted revision.
            Assert.Contains("work", (await HistoryAsync(again)).Revisions.Single().UsedBy);
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Usage_is_measured_again_when_an_update_and_a_compaction_end_without_waiting_for_the_timer()
    {
        await using var host = await ConsoleHost.StartAsync(extraArgs: NoTimer);
        var estate = host.Get<EstateMonitor>();
        await Eventually.UntilAsync(estate, () => RootUsageIsCurrentAsync(host), "the start-up measure");
        async Task<long> RootUsageAsync() => (await host.Get<Inventory>().GetAsync("fedora-42")).Volumes.Single(v => v.Kind == VolumeKind.Root).UsageBytes;
        var atStart = await RootUsageAsync();

        await SucceedsAsync(host, JobKind.Update, "fedora-42");
        await Eventually.UntilAsync(estate, () => RootUsageIsCurrentAsync(host), "fedora-42's root usage measured after the update");
        var afterUpdate = await RootUsageAsync();
        Assert.True(afterUpdate > atStart, $"{atStart} -> {afterUpdate}");

        await SucceedsAsync(host, JobKind.Compact, "fedora-42", new CompactRequest());
        await Eventually.UntilAsync(estate, () => RootUsageIsCurrentAsync(host), "fedora-42's root usage measured after the compaction");
        Assert.NotEqual(afterUpdate, await RootUsageAsync());
    }
}

// What "consistent" means after a crash and a recovery: the inventory, the files of the pool and libvirt agree, the
// database is sound, nothing is left over (no file the inventory does not know, no row without its file), and a root
// reads as it did before the crash, or as the job would have left it.
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hosting;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;

namespace QubesWeb.IntegrationTests.Crash;

public static class EstateConsistency
{
    public const string RefsFolder = "crash-refs";

    /// <summary>Libvirt domains of the demo's node file that the console does not manage.</summary>
    private static readonly string[] Unmanaged = ["legacy-vm"];

    public static string RefFile(string dataDir, int revision) => Path.Combine(dataDir, RefsFolder, $"rev-{revision}.qcow2");

    /// <summary>No job queued or running (start-up recovery's commits included), and no let-go file waiting for its unlink.</summary>
    public static async Task SettledAsync(CrashEstate host)
    {
        var jobs = host.Get<JobEngine>();
        await Eventually.UntilAsync(host.Get<EstateMonitor>(),
            async () => (await jobs.QueryAsync(new JobQuery { States = [JobState.Queued, JobState.Running] })).Count == 0,
            "no job queued or running", TimeSpan.FromSeconds(60));
        await FileReaper.IdleAsync();
    }

    public static async Task AssertAsync(CrashEstate host)
    {
        await SettledAsync(host);
        var problems = new List<string>();
        var dbPath = host.Get<Microsoft.Extensions.Options.IOptions<QubesWebOptions>>().Value.DatabasePath;
        using (var sqlite = new SqliteConnection($"Data Source={dbPath};Mode=ReadOnly;Pooling=False"))
        {
            sqlite.Open();
            var integrity = Rows(sqlite, "PRAGMA integrity_check");
            if (integrity is not ["ok"]) problems.Add("PRAGMA integrity_check: " + string.Join("; ", integrity));
            var foreign = Rows(sqlite, "PRAGMA foreign_key_check");
            if (foreign.Count > 0) problems.Add("PRAGMA foreign_key_check: " + string.Join("; ", foreign));
        }

        List<Qube> qubes;
        await using (var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync())
        {
            qubes = await db.Qubes.AsNoTracking().Include(q => q.Volumes).ThenInclude(v => v.Revisions).AsSplitQuery().ToListAsync();
            foreach (var l in await db.Locks.AsNoTracking().ToListAsync())
                problems.Add($"lock '{l.QubeName}' is still held by job #{l.JobId}, which is over");
        }
        var volumes = qubes.SelectMany(q => q.Volumes).ToDictionary(v => v.Id);
        var hypervisor = host.Get<IHypervisor>();

        // Inventory and libvirt.
        var domains = hypervisor.ListDomains();
        foreach (var d in domains.Where(d => qubes.All(q => q.Name != d.Name) && !Unmanaged.Contains(d.Name)))
            problems.Add($"libvirt has a domain '{d.Name}' the inventory does not");
        var running = new Dictionary<string, bool>();
        foreach (var q in qubes.Where(q => q.Class != QubeClass.AdminVM))
        {
            var d = domains.FirstOrDefault(d => d.Name == q.Name);
            if (d is null) { problems.Add($"{q.Name}: no libvirt domain"); continue; }
            if (d.Uuid != q.Uuid) problems.Add($"{q.Name}: libvirt's domain has UUID {d.Uuid}, the inventory {q.Uuid}");
            running[q.Name] = d.State is RunState.Running or RunState.Paused;
        }

        // Inventory and files.
        var known = new HashSet<string>(StringComparer.Ordinal);
        var pool = Path.Combine(host.DataDir, "pool");
        foreach (var q in qubes.Where(q => q.Class != QubeClass.AdminVM))
        {
            // The first-boot seed is derived from the inventory and written again before each start.
            known.Add(Path.GetFullPath(Path.Combine(pool, q.Name, Services.Estate.FirstBootSeed.FileName)));
            // So are the snapshots of a disposable template's private volume that its disposables start from.
            foreach (var g in DispvmPrivates.Generations(Path.Combine(pool, q.Name)).Values) known.Add(Path.GetFullPath(g));
            var runs = running.GetValueOrDefault(q.Name);
            foreach (var v in q.Volumes.Where(v => v.Path is not null))
            {
                var path = v.Path!;
                known.Add(Path.GetFullPath(path));
                switch (v.Kind)
                {
                    // A disposable's private volume is made at each start (on a snapshot of its disposable template's).
                    case VolumeKind.Private when q.Class == QubeClass.DispVM:
                        if (runs && !File.Exists(path)) problems.Add($"{q.Name}: runs without its private volume {path}");
                        break;
                    case VolumeKind.Private:
                        if (!File.Exists(path)) problems.Add($"{q.Name}: its private volume {path} is missing");
                        break;
                    case VolumeKind.Root when v.IsSaveOnStopRoot:
                        await CheckRootAsync(q, v, runs, problems,
                            v.DetachSourceVolumeId is { } from && volumes.TryGetValue(from, out var fv) ? fv.Revisions.FirstOrDefault(r => r.Number == v.DetachSourceRevision)?.Path : null);
                        foreach (var r in v.Revisions) known.Add(Path.GetFullPath(r.Path));
                        break;
                    case VolumeKind.Root:
                        if (runs != (v.OverlaySourceVolumeId is not null)) problems.Add($"{q.Name}: {(runs ? "runs without" : "is halted with")} a root snapshot in the inventory");
                        if (runs != File.Exists(path)) problems.Add($"{q.Name}: {(runs ? "runs without" : "is halted with")} its snapshot file {path}");
                        if (v.OverlaySourceVolumeId is { } source
                            && (!volumes.TryGetValue(source, out var sv) || sv.Revisions.All(r => r.Number != v.OverlayRevision)))
                            problems.Add($"{q.Name}: its snapshot's revision {v.OverlayRevision} of volume {source} is not in the inventory");
                        break;
                    case VolumeKind.Volatile:
                        if (runs != File.Exists(path)) problems.Add($"{q.Name}: {(runs ? "runs without" : "is halted with")} its volatile volume {path}");
                        if (!runs && v.OverlayCreatedUtc is not null) problems.Add($"{q.Name}: halted, but its volatile volume is recorded as made");
                        break;
                }
            }
        }
        foreach (var dir in Directory.EnumerateDirectories(pool))
        {
            if (qubes.All(q => q.Name != Path.GetFileName(dir))) problems.Add($"pool folder {dir} belongs to no qube");
            foreach (var f in Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories))
                if (!known.Contains(Path.GetFullPath(f))) problems.Add($"orphan file {f}");
        }
        foreach (var f in Directory.EnumerateFiles(pool)) problems.Add($"orphan file {f}");

        Assert.True(problems.Count == 0, "The estate is not consistent after the recovery:\n" + string.Join("\n", problems));
    }

    /// <param name="detachSource">An instant copy not yet independent: the source revision's file its bottom revision is written on.</param>
    private static async Task CheckRootAsync(Qube q, Volume v, bool runs, List<string> problems, string? detachSource)
    {
        if (v.DetachSourceVolumeId is not null && detachSource is null)
            problems.Add($"{q.Name}: its root is pinned on revision {v.DetachSourceRevision} of volume {v.DetachSourceVolumeId}, which is not in the inventory");
        if (v.Revisions.All(r => r.Number != v.CurrentRevision)) problems.Add($"{q.Name}: its current revision {v.CurrentRevision} has no row");
        var byNumber = v.Revisions.ToDictionary(r => r.Number);
        foreach (var r in v.Revisions)
        {
            if (r.State != RevisionState.Committed) problems.Add($"{q.Name}: revision {r.Number} is {r.State}");
            if (!File.Exists(r.Path)) { problems.Add($"{q.Name}: the file of revision {r.Number} ({r.Path}) is missing"); continue; }
            var backing = (await QemuImg.InfoAsync(r.Path)).BackingFile;
            var expected = r.BackingNumber is { } b ? byNumber.GetValueOrDefault(b)?.Path : null;
            // A bottom revision may be written on its source's revision until the detach swapped in its own copy.
            if (expected is null && detachSource is not null && backing is not null) expected = detachSource;
            var actual = backing is null ? null : Path.GetFullPath(backing, Path.GetDirectoryName(r.Path)!);
            if (!string.Equals(actual, expected is null ? null : Path.GetFullPath(expected), StringComparison.Ordinal))
                problems.Add($"{q.Name}: revision {r.Number} is written on {actual ?? "nothing"}, the inventory says {expected ?? "nothing"}");
            if (r.Released && !runs) { } // a let-go revision waits for its readers (other qubes); checked by the retention itself
        }
        var dirty = v.OverlaySourceVolumeId == v.Id;
        if (dirty && !runs) problems.Add($"{q.Name}: halted with a dirty overlay recorded (uncommitted writes after the recovery)");
        if (dirty != File.Exists(v.Path!)) problems.Add($"{q.Name}: the dirty overlay is {(dirty ? "recorded but missing" : "on disk but not recorded")} ({v.Path})");
        if (dirty && v.OverlayRevision != v.CurrentRevision) problems.Add($"{q.Name}: the dirty overlay was made on revision {v.OverlayRevision}, not the current {v.CurrentRevision}");
    }

    private static List<string> Rows(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
            rows.Add(string.Join(",", Enumerable.Range(0, reader.FieldCount).Select(i => reader.GetValue(i)?.ToString())));
        return rows;
    }

    /// <summary>The current revision of <paramref name="qube"/>'s root reads exactly as <paramref name="reference"/> (qemu-img compare).</summary>
    public static async Task AssertRootEqualsAsync(CrashEstate host, string qube, string reference)
    {
        var history = (await host.Get<RootRevisions>().HistoryAsync(qube))!;
        var current = CrashKinds.Pool(host, qube, RootFiles.Revision(history.Current));
        var compare = await ProcessRunner.RunAsync(QemuImg.QemuImgPath, ["compare", "-U", "-f", "qcow2", "-F", "qcow2", "--", reference, current]);
        Assert.True(compare.ExitCode == 0, $"{qube} revision {history.Current} does not read as {Path.GetFileName(reference)}: {compare.StandardOutput}{compare.StandardError}");
    }

    /// <summary>
    /// The root the job touched reads as one of the states before the crash (a revision, or the uncommitted writes
    /// as the revision they become), unless the job made new data; its chain checks clean; the qube starts and stops.
    /// </summary>
    public static async Task AssertRootRecoveredAsync(CrashEstate host, string qube, bool makesNewData)
    {
        var revisions = host.Get<RootRevisions>();
        var history = (await revisions.HistoryAsync(qube))!;
        foreach (var r in history.Revisions)
            await QemuImg.CheckAsync(CrashKinds.Pool(host, qube, RootFiles.Revision(r.Number)));
        var reference = RefFile(host.DataDir, history.Current);
        if (File.Exists(reference)) await AssertRootEqualsAsync(host, qube, reference);
        else Assert.True(makesNewData, $"{qube} is on revision {history.Current}, which reads like nothing from before the crash");
        await SucceedsAsync(host, JobKind.Start, qube);
        await SucceedsAsync(host, JobKind.Shutdown, qube);
        Assert.Equal(history.Current, (await revisions.HistoryAsync(qube))!.Current);
    }
}

// The demo estate as a console's first start makes it (the inventory, and the qcow2 files some fifty qemu-img and
// qemu-io runs make), made once per test process and copied into each test's own data folder. A test's console then
// starts on it as a console starts the second time: the demo still boots its autostart qubes at every start (the test
// driver forgets them with the process), so what the test sees is the same; only the making of the estate, seconds of
// CPU that every test paid again and that no test checks beyond the first, is not repeated. The pristine copy is made
// with libvirt unreachable, so nothing in it ever ran: no overlay, no volatile volume, no job.
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Hosting;

namespace QubesWeb.Tests.Shared;

public static class SeededDemo
{
    private const string Database = "qubesweb.db";

    /// <summary>What is a console's own and never copied: its sign-in secret and link, its data protection keys.</summary>
    private static readonly string[] NotCopied = ["keys", "sign-in-secret", "sign-in-link"];

    private static readonly Lazy<Task<string>> Pristine = new(MakeAsync);

    /// <summary>Makes <paramref name="dataDir"/> (which must not exist) a copy of the demo estate a first start makes.</summary>
    public static async Task CopyToAsync(string dataDir) => await CopyAsync(await Pristine.Value, dataDir);

    private static async Task<string> MakeAsync()
    {
        var dir = ConsoleHost.NewDataDir();
        var app = QubesWebHost.Build(
        [
            $"--DataDir={dir}", "--Port=0", "--Demo=true",
            // Unreachable: the start makes the estate and boots nothing.
            $"--LibvirtUri=test://{Path.Combine(dir, "no-such-node.xml")}",
            "--Logging:LogLevel:Default=None",
        ]);
        await app.StartAsync();
        await app.StopAsync();
        await app.DisposeAsync();
        // Its pooled connections closed: the database is whole in its file, the write-ahead log folded in.
        SqliteConnection.ClearAllPools();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        };
        return dir;
    }

    /// <summary>
    /// The estate in <paramref name="from"/> copied to <paramref name="to"/> (which must not exist), modes kept, less what
    /// is a console's own (<see cref="NotCopied"/>); the inventory's volume and revision paths are moved to it, as the
    /// inventory names its files by full path.
    /// </summary>
    public static async Task CopyAsync(string from, string to)
    {
        CopyFolder(from, to, top: true);
        var options = new DbContextOptionsBuilder<InventoryDbContext>()
            .UseSqlite(new SqliteConnectionStringBuilder { DataSource = Path.Combine(to, Database), Pooling = false }.ToString()).Options;
        await using var db = new InventoryDbContext(options);
        await db.Volumes.Where(v => v.Path != null).ExecuteUpdateAsync(s => s.SetProperty(v => v.Path, v => v.Path!.Replace(from, to)));
        await db.Revisions.ExecuteUpdateAsync(s => s.SetProperty(r => r.Path, r => r.Path.Replace(from, to)));
    }

    private static void CopyFolder(string from, string to, bool top)
    {
        Directory.CreateDirectory(to);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(to, File.GetUnixFileMode(from));
        foreach (var f in Directory.EnumerateFiles(from))
        {
            if (top && NotCopied.Contains(Path.GetFileName(f))) continue;
            var target = Path.Combine(to, Path.GetFileName(f));
            File.Copy(f, target);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(target, File.GetUnixFileMode(f));
        }
        foreach (var d in Directory.EnumerateDirectories(from))
        {
            if (top && NotCopied.Contains(Path.GetFileName(d))) continue;
            CopyFolder(d, Path.Combine(to, Path.GetFileName(d)), top: false);
        }
    }
}

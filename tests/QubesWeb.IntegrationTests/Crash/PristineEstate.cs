// The demo estate (less the qubes no case uses) made once for the whole crash matrix, and copied into each case's data
// folder: a child then starts on an estate made already, as any console's second start does, instead of making it
// again (some fifty qemu-img runs and the inventory's first writes, seconds of CPU in every case). What a case checks
// is its job's crash and the recovery, never the making of the demo.
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;

namespace QubesWeb.IntegrationTests.Crash;

public static class PristineEstate
{
    private const string Database = "qubesweb.db";

    /// <summary>
    /// The demo's qubes that no case touches, starts or needs as a template or netvm: each would only add to the work
    /// of every start (defining, recovering, measuring, booting), twice a case. Their likes stay as bystanders.
    /// </summary>
    private static readonly string[] Unused = ["sys-usb", "work", "personal", "untrusted", "social", "media", "research"];

    /// <summary>
    /// A folder with the demo estate as a console's first start makes it, but no qube started: libvirt unreachable,
    /// the start makes the estate and boots nothing, so no overlay or volatile volume is in it.
    /// </summary>
    public static async Task<string> MakeAsync()
    {
        var dir = ConsoleHost.NewDataDir();
        var nowhere = "test://" + Path.Combine(dir, "no-such-node.xml");
        await using (var console = await CrashConsole.StartAsync(dir, nowhere, LogLevel.None))
        {
            var inventory = console.Estate.Get<Inventory>();
            foreach (var name in Unused)
            {
                var removed = await inventory.RemoveAsync(name);
                foreach (var path in removed.Volumes.Select(v => v.Path).OfType<string>()) File.Delete(path);
                Directory.Delete(Path.Combine(dir, "pool", name));
            }
        }
        // Its pooled connections closed: the database is whole in its file, the write-ahead log folded in.
        SqliteConnection.ClearAllPools();
        return dir;
    }

    /// <summary>The estate in <paramref name="pristine"/> copied to <paramref name="dataDir"/>, as every test's demo is (<see cref="SeededDemo.CopyAsync"/>).</summary>
    public static Task CopyAsync(string pristine, string dataDir) => SeededDemo.CopyAsync(pristine, dataDir);
}

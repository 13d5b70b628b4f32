// Each qube's address and MAC, kept in the inventory: chosen once, lowest free, unique, and the same after a restart
// of the console or a migration of an older inventory.
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.DependencyInjection;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.IntegrationTests.InventoryTests;

namespace QubesWeb.IntegrationTests.Networks;

public sealed class QubeAddressTests
{
    [Fact]
    public async Task Each_new_qube_gets_the_lowest_free_address_and_its_mac_and_dom0_none()
    {
        await using var store = await TempInventory.CreateAsync();
        var inv = store.Inventory;
        await inv.CreateAsync(new NewQube("fedora-42", QubeClass.TemplateVM, "black"));
        await inv.CreateAsync(new NewQube("sys-net", QubeClass.AppVM, "red", "fedora-42", ProvidesNetwork: true));
        await inv.CreateAsync(new NewQube("work", QubeClass.AppVM, "blue", "fedora-42", "sys-net"));

        var dom0 = await inv.GetAsync("dom0");
        Assert.Null(dom0.IpAddress);
        Assert.Null(dom0.MacAddress);
        Assert.Equal(("10.137.0.2", "00:16:3e:5e:00:02"), await AddressOf("fedora-42"));
        Assert.Equal(("10.137.0.3", "00:16:3e:5e:00:03"), await AddressOf("sys-net"));
        Assert.Equal(("10.137.0.4", "00:16:3e:5e:00:04"), await AddressOf("work"));

        // A removed qube's address is free again, and the lowest free one is the next to go.
        await inv.UpdateAsync("work", new QubeChanges(ClearNetVm: true));
        await inv.RemoveAsync("sys-net");
        await inv.CreateAsync(new NewQube("personal", QubeClass.AppVM, "yellow", "fedora-42"));
        await inv.CreateAsync(new NewQube("vault", QubeClass.AppVM, "black", "fedora-42"));
        Assert.Equal(("10.137.0.3", "00:16:3e:5e:00:03"), await AddressOf("personal"));
        Assert.Equal(("10.137.0.5", "00:16:3e:5e:00:05"), await AddressOf("vault"));
        // A change of properties never moves an address.
        Assert.Equal(("10.137.0.4", "00:16:3e:5e:00:04"), await AddressOf("work"));

        async Task<(string?, string?)> AddressOf(string name)
        {
            var q = await inv.GetAsync(name);
            return (q.IpAddress, q.MacAddress);
        }
    }

    [Fact]
    public async Task Qubes_created_side_by_side_get_distinct_addresses()
    {
        await using var store = await TempInventory.CreateAsync();
        var inv = store.Inventory;
        await inv.CreateAsync(new NewQube("fedora-42", QubeClass.TemplateVM, "black"));

        // Each creation reads the lowest free address, then inserts: side by side, several read the same one, and the
        // unique index sends all but one to the next.
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            Task.Run(() => inv.CreateAsync(new NewQube($"q{i}", QubeClass.AppVM, "blue", "fedora-42")))));

        var qubes = (await inv.ListAsync()).Where(q => q.Class != QubeClass.AdminVM).ToList();
        Assert.Equal(9, qubes.Count);
        Assert.Equal(Enumerable.Range(0, 9).Select(QubeAddresses.IpAt).Order(), qubes.Select(q => q.IpAddress!).Order());
        Assert.Equal(9, qubes.Select(q => q.MacAddress).Distinct().Count());
    }

    [Fact]
    public void Addresses_run_through_the_whole_range_and_refuse_what_is_not_one_of_them()
    {
        Assert.Equal("10.137.0.2", QubeAddresses.IpAt(0));
        Assert.Equal("10.137.0.254", QubeAddresses.IpAt(252));
        Assert.Equal("10.137.1.2", QubeAddresses.IpAt(253));
        Assert.Equal("10.137.255.254", QubeAddresses.IpAt(QubeAddresses.Capacity - 1));
        Assert.Equal("00:16:3e:5e:ff:fe", QubeAddresses.MacFor("10.137.255.254"));
        foreach (var bad in new[] { "10.137.0.1", "10.137.0.255", "10.138.0.2", "10.137.0.02", "10.137.0", " 10.137.0.2", "10.137.0.2\n" })
            Assert.Null(QubeAddresses.IndexOf(bad));
        Assert.Throws<ArgumentException>(() => QubeAddresses.MacFor("192.168.0.2"));
        var full = Enumerable.Range(0, QubeAddresses.Capacity).Select(QubeAddresses.IpAt).ToList();
        var e = Assert.Throws<QubeRuleException>(() => QubeAddresses.LowestFree(full));
        Assert.Contains("in use", e.Message);
    }

    [Fact]
    public async Task Addresses_are_the_same_after_a_restart_of_the_console()
    {
        var dataDir = ConsoleHost.NewDataDir();
        // Stopped, not disposed: the folder stays for the second start, whose disposal removes it.
        var first = await ConsoleHost.StartAsync(dataDir: dataDir);
        var before = (await first.Get<Inventory>().ListAsync()).ToDictionary(q => q.Name, q => (q.IpAddress, q.MacAddress));
        await first.StopAsync();
        Assert.True(Directory.Exists(dataDir));
        await using var second = await ConsoleHost.StartAsync(dataDir: dataDir);
        var after = (await second.Get<Inventory>().ListAsync()).ToDictionary(q => q.Name, q => (q.IpAddress, q.MacAddress));

        Assert.Equal(before.OrderBy(kv => kv.Key), after.OrderBy(kv => kv.Key));
        Assert.Equal((null, null), after["dom0"]);
        var ips = after.Values.Where(a => a.Item1 is not null).Select(a => a.Item1).ToList();
        Assert.True(ips.Count > 5, "the demo estate has qubes");
        Assert.Equal(ips.Count, ips.Distinct().Count());
        Assert.Equal(ips.Count, after.Values.Select(a => a.Item2).Where(m => m is not null).Distinct().Count());
    }

    [Fact]
    public async Task Migrating_an_older_inventory_gives_its_qubes_addresses_in_the_order_they_were_made()
    {
        var folder = Path.Combine(Path.GetTempPath(), "qubesweb-migration-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            await using var services = new ServiceCollection().AddInventory(Path.Combine(folder, "qubesweb.db")).BuildServiceProvider();
            var contexts = services.GetRequiredService<IDbContextFactory<InventoryDbContext>>();
            await using (var db = await contexts.CreateDbContextAsync())
            {
                // The inventory as the console left it before qubes had addresses.
                await db.GetService<IMigrator>().MigrateAsync("20261130181313_InstantCopies");
                foreach (var (id, name, cls) in new[] { (1, "dom0", "AdminVM"), (4, "work", "AppVM"), (2, "fedora-42", "TemplateVM"), (3, "sys-net", "AppVM") })
                    await db.Database.ExecuteSqlAsync($"""
                        INSERT INTO Qubes (Id, Name, Class, Uuid, LabelId, ProvidesNetwork, MemoryMiB, VCpus, Autostart, Notes, CreatedUtc, BootFromMedia)
                        VALUES ({id}, {name}, {cls}, {Guid.NewGuid()}, 1, 0, 400, 2, 0, '', '2026-11-30 00:00:00', 0)
                        """);
                await db.Database.MigrateAsync();
            }
            var inv = services.GetRequiredService<Inventory>();
            var rows = (await inv.ListAsync()).ToDictionary(q => q.Name, q => (q.IpAddress, q.MacAddress));
            Assert.Equal((null, null), rows["dom0"]);
            Assert.Equal(("10.137.0.2", "00:16:3e:5e:00:02"), rows["fedora-42"]);
            Assert.Equal(("10.137.0.3", "00:16:3e:5e:00:03"), rows["sys-net"]);
            Assert.Equal(("10.137.0.4", "00:16:3e:5e:00:04"), rows["work"]);
            // And the next qube continues after them, under the unique indexes the migration made.
            var next = await inv.CreateAsync(new NewQube("vault", QubeClass.AppVM, "black", "fedora-42"));
            Assert.Equal(("10.137.0.5", "00:16:3e:5e:00:05"), (next.IpAddress, next.MacAddress));
            await using (var db = await contexts.CreateDbContextAsync())
            {
                var dup = await Assert.ThrowsAsync<SqliteException>(() =>
                    db.Qubes.Where(q => q.Name == "vault").ExecuteUpdateAsync(s => s.SetProperty(q => q.IpAddress, "10.137.0.2")));
                Assert.Contains("Qubes.IpAddress", dup.Message);
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}

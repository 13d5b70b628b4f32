// A qube's firewall through the console on libvirt's test driver: the rules kept in the inventory in order, replaced
// whole or not at all, refused for templates and dom0, its interface referring to its own filter. The test driver
// has no packet filter (the real-hypervisor lane proves the enforcement), which the save reports as it is.
using System.Xml.Linq;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Networks;
using QubesWeb.Services.Qubes;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.DependencyInjection;

namespace QubesWeb.IntegrationTests.Networks;

public sealed class FirewallTests
{
    private static QubeFirewall Limited(string qube, params FirewallRuleInput[] rules) => new(qube, FirewallAction.Drop, rules);

    private static FirewallRuleInput Rule(FirewallAction action, string? destination, FirewallProtocol protocol = FirewallProtocol.Any, int? port = null, string comment = "") =>
        new(new FirewallRuleSpec(action, destination, protocol, port), comment);

    [Fact]
    public async Task A_saved_firewall_is_kept_in_order_and_a_second_save_replaces_it_whole()
    {
        await using var host = await ConsoleHost.StartAsync();
        var commands = host.Get<QubeCommands>();
        var queries = host.Get<QubeQueries>();
        var before = await queries.FirewallAsync("work");
        Assert.Equal(FirewallAction.Accept, before.Policy);
        Assert.Empty(before.Rules);

        var outcome = await commands.SetFirewallAsync(Limited("work",
            Rule(FirewallAction.Accept, "10.139.1.0/30", FirewallProtocol.Udp, 53, "DNS"),
            Rule(FirewallAction.Drop, "192.168.1.10"),
            Rule(FirewallAction.Accept, null, FirewallProtocol.Tcp, 443, "web")));
        // Stored, and said as it is: the test driver enforces nothing.
        Assert.Equal(FirewallApply.NotSupported, outcome.Applied);
        Assert.Null(outcome.Problem);

        var saved = await queries.FirewallAsync("work");
        Assert.Equal(FirewallAction.Drop, saved.Policy);
        Assert.Equal(["DNS", "", "web"], saved.Rules.Select(r => r.Comment));
        Assert.Equal(["10.139.1.0/30", "192.168.1.10", null], saved.Rules.Select(r => r.Rule.Destination));

        // Two rules, swapped and one gone: the rows are exactly these now.
        await commands.SetFirewallAsync(new QubeFirewall("work", FirewallAction.Accept,
            [Rule(FirewallAction.Accept, null, FirewallProtocol.Tcp, 443, "web"), Rule(FirewallAction.Drop, "192.168.1.10")]));
        saved = await queries.FirewallAsync("work");
        Assert.Equal(FirewallAction.Accept, saved.Policy);
        Assert.Equal([443, null], saved.Rules.Select(r => r.Rule.PortStart));
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        Assert.Equal(2, await db.FirewallRules.CountAsync(r => r.QubeId == db.Qubes.Single(q => q.Name == "work").Id));

        // Other qubes' firewalls are their own.
        Assert.Empty((await queries.FirewallAsync("personal")).Rules);
    }

    [Fact]
    public async Task A_refused_firewall_writes_nothing_and_says_why()
    {
        await using var host = await ConsoleHost.StartAsync();
        var commands = host.Get<QubeCommands>();
        var queries = host.Get<QubeQueries>();
        await commands.SetFirewallAsync(Limited("work", Rule(FirewallAction.Accept, "10.0.0.0/8")));

        var badComment = await Assert.ThrowsAsync<QubeRuleException>(() => commands.SetFirewallAsync(
            Limited("work", Rule(FirewallAction.Accept, null), Rule(FirewallAction.Drop, null, comment: "two\nlines"))));
        Assert.Equal("Rule 2: A comment is one line of text, without control characters.", badComment.Message);

        var template = await Assert.ThrowsAsync<QubeRuleException>(() => commands.SetFirewallAsync(Limited("fedora-42")));
        Assert.Contains("is a template: it is on no network", template.Message);
        var dom0 = await Assert.ThrowsAsync<QubeRuleException>(() => commands.SetFirewallAsync(Limited("dom0")));
        Assert.Contains("admin qube", dom0.Message);
        var none = await Assert.ThrowsAsync<QubeRuleException>(() => commands.SetFirewallAsync(Limited("nosuch")));
        Assert.Contains("There is no qube named 'nosuch'", none.Message);

        var kept = await queries.FirewallAsync("work");
        Assert.Equal(FirewallAction.Drop, kept.Policy);
        Assert.Equal("10.0.0.0/8", Assert.Single(kept.Rules).Rule.Destination);
    }

    [Fact]
    public async Task A_clients_interface_refers_to_its_own_filter_and_a_qube_on_no_netvm_keeps_its_rules_for_later()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        var nic = XDocument.Parse(hypervisor.GetXml("personal")).Root!.Element("devices")!.Elements("interface").Single();
        Assert.Equal(FirewallSpec.NameFor("personal"), nic.Element("filterref")!.Attribute("filter")!.Value);

        // vault has netvm none: the rules are kept, with nothing to apply them to yet.
        var outcome = await host.Get<QubeCommands>().SetFirewallAsync(Limited("vault", Rule(FirewallAction.Accept, "10.0.0.1")));
        Assert.Null(outcome.Applied);
        Assert.Single((await host.Get<QubeQueries>().FirewallAsync("vault")).Rules);
    }

    [Fact]
    public async Task A_removed_qubes_rules_go_with_it()
    {
        await using var host = await ConsoleHost.StartAsync();
        await host.Get<QubeCommands>().SetFirewallAsync(Limited("untrusted", Rule(FirewallAction.Drop, "10.0.0.0/8")));
        await host.Get<Inventory>().RemoveAsync("untrusted");
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        Assert.Equal(0, await db.FirewallRules.CountAsync());
    }

    [Fact]
    public async Task Migrating_an_older_inventory_leaves_every_qubes_traffic_allowed_as_before()
    {
        var folder = Path.Combine(Path.GetTempPath(), "qubesweb-migration-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            await using var services = new ServiceCollection().AddInventory(Path.Combine(folder, "qubesweb.db")).BuildServiceProvider();
            var contexts = services.GetRequiredService<IDbContextFactory<InventoryDbContext>>();
            await using (var db = await contexts.CreateDbContextAsync())
            {
                // The inventory as the console left it before firewalls.
                await db.GetService<IMigrator>().MigrateAsync("20261201043929_QubeAddresses");
                await db.Database.ExecuteSqlAsync($"""
                    INSERT INTO Qubes (Id, Name, Class, Uuid, LabelId, ProvidesNetwork, MemoryMiB, VCpus, Autostart, Notes, CreatedUtc, BootFromMedia, IpAddress, MacAddress)
                    VALUES (2, 'work', 'AppVM', {Guid.NewGuid()}, 1, 0, 400, 2, 0, '', '2026-11-30 00:00:00', 0, '10.137.0.2', '00:16:3e:5e:00:02')
                    """);
                await db.Database.MigrateAsync();
            }
            var firewall = await services.GetRequiredService<Inventory>().FirewallOfAsync("work");
            Assert.Equal(FirewallAction.Accept, firewall.Policy);
            Assert.Empty(firewall.Rules);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}

// The qubes' networks on libvirt's test driver, through the console: each network provider's private link (no
// address on the host), its clients' isolated, filtered interfaces on it, sys-net's uplink, and no interface for a
// qube with netvm none or a template. The demo estate: sys-net (uplink) <- sys-firewall <- work, personal, ...; vault none.
using System.Xml.Linq;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Qubes;

namespace QubesWeb.IntegrationTests.Networks;

public sealed class NetworkLinkTests
{
    private static List<XElement> Interfaces(IHypervisor hypervisor, string name) =>
        XDocument.Parse(hypervisor.GetXml(name)).Root!.Element("devices")!.Elements("interface").ToList();

    private static string? Source(XElement nic) => nic.Element("source")?.Attribute("network")?.Value;
    private static string? Mac(XElement nic) => nic.Element("mac")?.Attribute("address")?.Value;
    private static string? Isolated(XElement nic) => nic.Element("port")?.Attribute("isolated")?.Value;

    private static Dictionary<string, string?> FilterParameters(XElement nic) =>
        nic.Element("filterref")?.Elements("parameter").ToDictionary(p => p.Attribute("name")!.Value, p => p.Attribute("value")?.Value) ?? [];

    private static List<string> OemStrings(IHypervisor hypervisor, string name) =>
        XDocument.Parse(hypervisor.GetXml(name)).Root!.Element("sysinfo")!.Element("oemStrings")!.Elements("entry").Select(e => e.Value).ToList();

    [Fact]
    public async Task A_clients_interface_is_on_its_netvms_link_on_an_isolated_port_filtered_to_its_ip_and_mac()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        var work = await host.Get<Inventory>().GetAsync("work");
        var firewall = await host.Get<Inventory>().GetAsync("sys-firewall");

        var nic = Assert.Single(Interfaces(hypervisor, "work"));
        Assert.Equal("network", nic.Attribute("type")!.Value);
        Assert.Equal("qw-sys-firewall", Source(nic));
        Assert.Equal(work.MacAddress, Mac(nic));
        Assert.Equal("virtio", nic.Element("model")!.Attribute("type")!.Value);
        Assert.Equal("yes", Isolated(nic));
        // Its own firewall, which holds the anti-spoofing (clean-traffic) and reads the same IP and MAC.
        Assert.Equal("qw-fw-work", nic.Element("filterref")!.Attribute("filter")!.Value);
        Assert.Equal(new Dictionary<string, string?> { ["IP"] = work.IpAddress, ["MAC"] = work.MacAddress }, FilterParameters(nic));

        // What the guest reads of it from its firmware.
        var oem = OemStrings(hypervisor, "work");
        Assert.Contains($"qubesweb:ip={work.IpAddress}", oem);
        Assert.Contains($"qubesweb:gateway={firewall.IpAddress}", oem);
        Assert.Contains("qubesweb:dns=10.139.1.1 10.139.1.2", oem);
        Assert.Contains($"qubesweb:mac={work.MacAddress}", oem);
        // Keys are added after the old ones, never in their place.
        Assert.Equal("qubesweb:name=work", oem[0]);
        Assert.StartsWith("qubesweb:provides-network=", oem[5]);
    }

    [Fact]
    public async Task Providers_are_gateways_on_their_own_link_and_sys_net_is_on_the_uplink()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        var inventory = host.Get<Inventory>();
        var net = await inventory.GetAsync("sys-net");
        var firewall = await inventory.GetAsync("sys-firewall");

        // sys-net: the uplink (libvirt's "default"), then its own link; neither isolated nor filtered.
        var netNics = Interfaces(hypervisor, "sys-net");
        Assert.Equal(["default", "qw-sys-net"], netNics.Select(Source));
        Assert.Equal([net.MacAddress, QubeAddresses.GatewayMacFor(net.IpAddress!)], netNics.Select(Mac));
        Assert.All(netNics, n => Assert.Null(n.Element("port")));
        Assert.All(netNics, n => Assert.Null(n.Element("filterref")));
        Assert.Contains("qubesweb:gateway=", OemStrings(hypervisor, "sys-net"));

        // sys-firewall: a client of sys-net (isolated, filtered), and the gateway of its own link.
        var fwNics = Interfaces(hypervisor, "sys-firewall");
        Assert.Equal(["qw-sys-net", "qw-sys-firewall"], fwNics.Select(Source));
        Assert.Equal("yes", Isolated(fwNics[0]));
        Assert.Equal(firewall.IpAddress, FilterParameters(fwNics[0])["IP"]);
        Assert.Null(fwNics[1].Element("port"));
        Assert.Null(fwNics[1].Element("filterref"));
        Assert.Equal(QubeAddresses.GatewayMacFor(firewall.IpAddress!), Mac(fwNics[1]));
    }

    [Fact]
    public async Task Each_provider_has_a_link_with_no_address_on_the_host_and_a_short_bridge_and_nobody_else_has_one()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        var inventory = host.Get<Inventory>();

        var links = hypervisor.ListLinks().OrderBy(l => l.Name, StringComparer.Ordinal).ToList();
        Assert.Equal(["qw-sys-firewall", "qw-sys-net"], links.Select(l => l.Name));
        Assert.All(links, l => Assert.False(l.HasAddress, $"{l.Name} has an <ip>: dom0 would be on it"));
        Assert.All(links, l => Assert.InRange(l.Bridge!.Length, 1, 15));
        var firewall = await inventory.GetAsync("sys-firewall");
        var parts = firewall.IpAddress!.Split('.');
        Assert.Equal($"qwbr-{parts[2]}-{parts[3]}", links[0].Bridge);
        // The demo boots work, a client of sys-firewall: the link came up before it.
        await Eventually.UntilAsync(host.Get<EstateMonitor>(), () => host.Get<EstateMonitor>().StateOf("work") == RunState.Running, "work running");
        Assert.All(hypervisor.ListLinks(), l => Assert.True(l.Active, $"{l.Name} is not running"));
    }

    [Fact]
    public async Task A_qube_with_netvm_none_and_a_template_have_no_interface_at_all()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();

        Assert.Empty(Interfaces(hypervisor, "vault"));
        Assert.Empty(Interfaces(hypervisor, "fedora-42"));
        Assert.Empty(Interfaces(hypervisor, "sys-usb"));
        Assert.Contains("qubesweb:gateway=", OemStrings(hypervisor, "vault"));
        Assert.Contains("qubesweb:dns=", OemStrings(hypervisor, "vault"));
        // On no network, it has no address to use: its inventory address is not handed to its guest.
        Assert.Contains("qubesweb:ip=", OemStrings(hypervisor, "vault"));
        Assert.Contains("qubesweb:mac=", OemStrings(hypervisor, "vault"));

        // Taking a client's netvm away takes its interface away.
        await host.Get<QubeCommands>().SavePropertiesAsync("banking", new QubeChanges(ClearNetVm: true));
        Assert.Empty(Interfaces(hypervisor, "banking"));
    }

    [Fact]
    public async Task A_new_providers_link_is_defined_stopped_started_by_its_first_qube_and_removed_once_nothing_is_on_it()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        var inventory = host.Get<Inventory>();
        var estate = host.Get<EstateMonitor>();
        var definitions = host.Get<DomainDefinitions>();

        await inventory.CreateAsync(new NewQube("sys-vpn", QubeClass.AppVM, "orange", "fedora-42", "sys-firewall", ProvidesNetwork: true));
        await inventory.CreateAsync(new NewQube("client", QubeClass.AppVM, "red", "fedora-42", "sys-vpn"));
        await inventory.CreateAsync(new NewQube("client2", QubeClass.AppVM, "red", "fedora-42", "sys-vpn"));
        await estate.ReconcileAsync();
        var link = Assert.Single(hypervisor.ListLinks(), l => l.Name == "qw-sys-vpn");
        Assert.False(link.Active);
        Assert.False(link.HasAddress);
        Assert.Equal("qw-sys-vpn", Source(Assert.Single(Interfaces(hypervisor, "client"))));

        // A client starts first: its start brings the link up (the provider need not run for the link to exist).
        hypervisor.Start("client2");
        Assert.True(Assert.Single(hypervisor.ListLinks(), l => l.Name == "qw-sys-vpn").Active);
        hypervisor.Kill("client2");

        // The clients leave sys-vpn and sys-vpn goes; libvirt still holds a definition of client on its link (an older
        // console's, or one edited with virsh): the link stays while a domain is on it.
        var stale = definitions.SpecOf(await inventory.GetForDomainAsync("client"));
        foreach (var name in new[] { "client", "client2" })
        {
            await inventory.UpdateAsync(name, new QubeChanges(ClearNetVm: true));
            await definitions.ApplyAsync(name);
        }
        hypervisor.Define(stale);
        // Out of the inventory first, as the removal job does: a reconciliation between would define it again.
        await inventory.RemoveAsync("sys-vpn");
        hypervisor.Undefine("sys-vpn");
        await estate.ReconcileAsync();
        Assert.Equal(["client"], hypervisor.DomainsOnNetwork("qw-sys-vpn"));
        Assert.Contains(hypervisor.ListLinks(), l => l.Name == "qw-sys-vpn");

        // Once client is defined from the inventory again, nothing is on the link, and the next reconciliation removes it.
        await definitions.ApplyAsync("client");
        Assert.Empty(Interfaces(hypervisor, "client"));
        await estate.ReconcileAsync();
        Assert.DoesNotContain(hypervisor.ListLinks(), l => l.Name == "qw-sys-vpn");
        Assert.Equal(["qw-sys-firewall", "qw-sys-net"], hypervisor.ListLinks().Select(l => l.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task An_uplink_that_cannot_be_a_network_name_stops_the_console_at_start_with_the_rule()
    {
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            var e = await Assert.ThrowsAnyAsync<Exception>(() => ConsoleHost.StartAsync(dataDir: dataDir, extraArgs: "--Networks:Uplink=../etc"));
            Assert.Contains("Networks:Uplink must name a libvirt network", e.ToString());
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task A_configured_uplink_is_where_sys_net_is_plugged_in()
    {
        await using var host = await ConsoleHost.StartAsync(extraArgs: "--Networks:Uplink=outside");
        Assert.Equal(["outside", "qw-sys-net"], Interfaces(host.Get<IHypervisor>(), "sys-net").Select(Source));
    }

    [Fact]
    public async Task A_netvm_changed_while_a_qube_runs_is_redefined_and_the_test_driver_says_it_cannot_move_it_live()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        var estate = host.Get<EstateMonitor>();
        await Eventually.UntilAsync(estate, () => estate.StateOf("work") == RunState.Running, "work running");

        var saved = await host.Get<QubeCommands>().SavePropertiesAsync("work", new QubeChanges(NetVm: "sys-net"));

        // libvirt's test driver has no virDomainAttachDeviceFlags: the move is the definition's, for the next start.
        Assert.Equal(InterfaceMove.NotSupported, saved.Network);
        Assert.Null(saved.DomainProblem);
        var inactive = XDocument.Parse(((LibvirtHypervisor)hypervisor).WithDomain("work", d => d.GetXmlDesc(QubesWeb.Hypervisor.Libvirt.DomainXmlFlags.Inactive)));
        Assert.Equal("qw-sys-net", Source(inactive.Root!.Element("devices")!.Elements("interface").Single()));
        var net = await host.Get<Inventory>().GetAsync("sys-net");
        Assert.Contains($"qubesweb:gateway={net.IpAddress}", inactive.Root!.Element("sysinfo")!.Element("oemStrings")!.Elements("entry").Select(e => e.Value));
    }
}

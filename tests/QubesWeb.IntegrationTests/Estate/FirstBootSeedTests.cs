// The first-boot configuration on the embedded demo: a cloud-init NoCloud seed written by genisoimage before each
// start of a qube whose OS family runs cloud-init, attached read-only as vdd, whose files say the qube's hostname,
// Qubes' volume layout, the guest agent, the configured key and its network interfaces (matched by the MACs its domain
// has, with its address, a route through its netvm and Qubes' DNS); none for other families.
using System.Net;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Estate;

namespace QubesWeb.IntegrationTests.Estate;

public sealed class FirstBootSeedTests
{
    private static async Task<string> IsoFileAsync(string iso, string file) =>
        (await ProcessRunner.RunCheckedAsync("isoinfo", ["-J", "-i", iso, "-x", "/" + file])).StandardOutput;

    [Fact]
    public async Task A_qube_of_a_cloud_init_family_gets_a_cidata_seed_written_at_start_with_its_hostname_layout_agent_and_key()
    {
        const string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIQubesWebTestKey test@dom0";
        await using var host = await ConsoleHost.StartAsync(extraArgs: [$"--FirstBoot:SshAuthorizedKey={key}"]);
        var seed = Path.Combine(host.PoolDir, "vault", FirstBootSeed.FileName);
        var disk = XDocument.Parse(host.Get<IHypervisor>().GetXml("vault")).Root!.Element("devices")!.Elements("disk")
            .Single(d => d.Element("target")!.Attribute("dev")!.Value == "vdd");
        Assert.Equal(seed, disk.Element("source")!.Attribute("file")!.Value);
        Assert.NotNull(disk.Element("readonly"));
        Assert.Equal("raw", disk.Element("driver")!.Attribute("type")!.Value);

        var start = await SucceedsAsync(host, JobKind.Start, "vault");

        Assert.Contains(start.Log, l => l.Text == "First-boot configuration (cloud-init) written for vault.");
        Assert.Contains("Volume id: cidata", (await ProcessRunner.RunCheckedAsync("isoinfo", ["-d", "-i", seed])).StandardOutput);
        var meta = JsonNode.Parse(await IsoFileAsync(seed, "meta-data"))!;
        Assert.Equal("vault", (string?)meta["local-hostname"]);
        var userData = await IsoFileAsync(seed, "user-data");
        Assert.StartsWith("#cloud-config\n", userData);
        var config = JsonNode.Parse(userData["#cloud-config\n".Length..])!;
        Assert.Equal("vault", (string?)config["hostname"]);
        var user = config["users"]![0]!;
        Assert.Equal(("user", key, true), ((string?)user["name"], (string?)user["ssh_authorized_keys"]![0], (bool?)user["lock_passwd"]));
        Assert.Equal(["LABEL=private", "/rw", "ext4"], config["mounts"]![0]!.AsArray().Take(3).Select(n => (string?)n));
        Assert.Equal(["/rw/home", "/home", "none"], config["mounts"]![1]!.AsArray().Take(3).Select(n => (string?)n));
        Assert.Equal("/dev/vdb", (string?)config["fs_setup"]![0]!["device"]);
        Assert.False((bool?)config["fs_setup"]![0]!["overwrite"]);
        Assert.Contains("qemu-guest-agent", config["packages"]!.AsArray().Select(n => (string?)n));
        Assert.Contains(config["runcmd"]!.AsArray(), c => c!.ToJsonString() == """["systemctl","enable","--now","qemu-guest-agent"]""");
        // vault's netvm is none: it has no interface, and its network-config configures none.
        var network = JsonNode.Parse(await IsoFileAsync(seed, "network-config"))!;
        Assert.Equal(2, (int?)network["version"]);
        Assert.Empty(network["ethernets"]!.AsObject());

        // The same settings, the same instance: cloud-init does not redo per-instance work on a kept root.
        var id = (string?)meta["instance-id"];
        await SucceedsAsync(host, JobKind.Shutdown, "vault");
        await SucceedsAsync(host, JobKind.Start, "vault");
        Assert.Equal(id, (string?)JsonNode.Parse(await IsoFileAsync(seed, "meta-data"))!["instance-id"]);
    }

    [Fact]
    public async Task A_new_key_is_a_new_instance_and_a_qube_of_another_family_gets_no_seed()
    {
        await using (var first = await ConsoleHost.StartAsync(extraArgs: ["--FirstBoot:PasswordHash=$6$salt$hash"]))
        {
            var seeds = first.Get<FirstBootSeeds>();
            // An empty standalone has no os-distribution: no seed, no vdd.
            await SucceedsAsync(first, JobKind.Clone, "plain", new Services.Qubes.CloneRequest(Data.Qubes.QubeClass.StandaloneVM, null, "red"));
            var plain = await first.Get<Data.Qubes.Inventory>().GetForDomainAsync("plain");
            Assert.False(await seeds.WriteAsync(plain, CancellationToken.None));
            Assert.DoesNotContain("vdd", first.Get<IHypervisor>().GetXml("plain"));
            Assert.False(File.Exists(Path.Combine(first.PoolDir, "plain", FirstBootSeed.FileName)));

            var work = await first.Get<Data.Qubes.Inventory>().GetForDomainAsync("work");
            var a = FirstBootSeed.Build(work, new FirstBootOptions { PasswordHash = "$6$salt$hash" });
            var b = FirstBootSeed.Build(work, new FirstBootOptions { PasswordHash = "$6$salt$other" });
            Assert.NotEqual(JsonNode.Parse(a.MetaData)!["instance-id"]!.ToString(), JsonNode.Parse(b.MetaData)!["instance-id"]!.ToString());
            var user = JsonNode.Parse(a.UserData["#cloud-config\n".Length..])!["users"]![0]!;
            Assert.Equal(("$6$salt$hash", false), ((string?)user["hashed_passwd"], (bool?)user["lock_passwd"]));
        }
    }

    private static List<string> DomainMacs(IHypervisor hypervisor, string name) =>
        XDocument.Parse(hypervisor.GetXml(name)).Root!.Element("devices")!.Elements("interface")
            .Select(n => n.Element("mac")!.Attribute("address")!.Value).ToList();

    private static JsonNode Ethernet(JsonNode network, string name) =>
        network["ethernets"]![name] ?? throw new Xunit.Sdk.XunitException($"no ethernets.{name} in {network.ToJsonString()}");

    [Fact]
    public async Task A_clients_seed_gives_its_interface_by_mac_a_host_address_a_route_through_its_netvm_and_qubes_dns()
    {
        await using var host = await ConsoleHost.StartAsync();
        var inventory = host.Get<Inventory>();
        var banking = await inventory.GetAsync("banking");
        var firewall = await inventory.GetAsync("sys-firewall");

        await SucceedsAsync(host, JobKind.Start, "banking");

        var network = JsonNode.Parse(await IsoFileAsync(Path.Combine(host.PoolDir, "banking", FirstBootSeed.FileName), "network-config"))!;
        Assert.Equal(2, (int?)network["version"]);
        Assert.Equal(["eth0"], network["ethernets"]!.AsObject().Select(e => e.Key));
        var eth0 = Ethernet(network, "eth0");
        // The MAC the guest's NIC really has: the one in the domain.
        Assert.Equal(DomainMacs(host.Get<IHypervisor>(), "banking"), [(string)eth0["match"]!["macaddress"]!]);
        Assert.Equal(banking.MacAddress, (string?)eth0["match"]!["macaddress"]);
        Assert.Equal("eth0", (string?)eth0["set-name"]);
        Assert.False((bool?)eth0["dhcp4"]);
        var address = Assert.Single(eth0["addresses"]!.AsArray());
        Assert.Equal($"{banking.IpAddress}/32", (string?)address);
        Assert.True(IPNetwork.TryParse((string?)address, out _), $"{address} is not an address with a prefix");
        // The gateway is outside a /32: first a link route to it, then the default through it.
        var routes = eth0["routes"]!.AsArray();
        Assert.Equal(2, routes.Count);
        Assert.Equal(($"{firewall.IpAddress}/32", "link", null), ((string?)routes[0]!["to"], (string?)routes[0]!["scope"], (string?)routes[0]!["via"]));
        Assert.Equal(("0.0.0.0/0", firewall.IpAddress, true), ((string?)routes[1]!["to"], (string?)routes[1]!["via"], (bool?)routes[1]!["on-link"]));
        Assert.Equal(["10.139.1.1", "10.139.1.2"], eth0["nameservers"]!["addresses"]!.AsArray().Select(n => (string?)n));
    }

    [Fact]
    public async Task A_providers_seed_gives_its_own_link_its_address_too_and_sys_net_takes_the_uplinks_dhcp()
    {
        await using var host = await ConsoleHost.StartAsync();
        var inventory = host.Get<Inventory>();
        var hypervisor = host.Get<IHypervisor>();
        var net = await inventory.GetForDomainAsync("sys-net");
        var firewall = await inventory.GetForDomainAsync("sys-firewall");

        // sys-firewall: a client of sys-net on eth0, and on eth1 (its own link, the gateway MAC) the address its clients route to.
        var fw = JsonNode.Parse(FirstBootSeed.Build(firewall, new FirstBootOptions()).NetworkConfig)!;
        Assert.Equal(["eth0", "eth1"], fw["ethernets"]!.AsObject().Select(e => e.Key));
        Assert.Equal(DomainMacs(hypervisor, "sys-firewall"), new[] { "eth0", "eth1" }.Select(n => (string)Ethernet(fw, n)["match"]!["macaddress"]!));
        Assert.Equal(QubeAddresses.GatewayMacFor(firewall.IpAddress!), (string?)Ethernet(fw, "eth1")["match"]!["macaddress"]);
        Assert.Equal("eth1", (string?)Ethernet(fw, "eth1")["set-name"]);
        Assert.Equal([$"{firewall.IpAddress}/32"], Ethernet(fw, "eth0")["addresses"]!.AsArray().Select(n => (string?)n));
        Assert.Equal(net.IpAddress, (string?)Ethernet(fw, "eth0")["routes"]![1]!["via"]);
        Assert.Equal([$"{firewall.IpAddress}/32"], Ethernet(fw, "eth1")["addresses"]!.AsArray().Select(n => (string?)n));
        Assert.Null(Ethernet(fw, "eth1")["routes"]);
        Assert.Null(Ethernet(fw, "eth1")["nameservers"]);

        // sys-net: no netvm, so its uplink's address is the uplink's DHCP's; its own link has its address.
        var sysNet = JsonNode.Parse(FirstBootSeed.Build(net, new FirstBootOptions()).NetworkConfig)!;
        Assert.Equal(DomainMacs(hypervisor, "sys-net"), new[] { "eth0", "eth1" }.Select(n => (string)Ethernet(sysNet, n)["match"]!["macaddress"]!));
        Assert.True((bool?)Ethernet(sysNet, "eth0")["dhcp4"]);
        Assert.Null(Ethernet(sysNet, "eth0")["addresses"]);
        Assert.Equal([$"{net.IpAddress}/32"], Ethernet(sysNet, "eth1")["addresses"]!.AsArray().Select(n => (string?)n));
    }

    [Fact]
    public async Task A_new_netvm_is_a_new_instance_whose_network_config_routes_through_it()
    {
        await using var host = await ConsoleHost.StartAsync();
        var inventory = host.Get<Inventory>();
        var before = FirstBootSeed.Build(await inventory.GetForDomainAsync("banking"), new FirstBootOptions());

        await host.Get<Services.Qubes.QubeCommands>().SavePropertiesAsync("banking", new QubeChanges(NetVm: "sys-net"));

        var after = FirstBootSeed.Build(await inventory.GetForDomainAsync("banking"), new FirstBootOptions());
        var net = await inventory.GetAsync("sys-net");
        Assert.Equal(net.IpAddress, (string?)Ethernet(JsonNode.Parse(after.NetworkConfig)!, "eth0")["routes"]![1]!["via"]);
        Assert.NotEqual((string?)JsonNode.Parse(before.MetaData)!["instance-id"], (string?)JsonNode.Parse(after.MetaData)!["instance-id"]);

        // And none: no interface, nothing configured, another instance again.
        await host.Get<Services.Qubes.QubeCommands>().SavePropertiesAsync("banking", new QubeChanges(ClearNetVm: true));
        var none = FirstBootSeed.Build(await inventory.GetForDomainAsync("banking"), new FirstBootOptions());
        Assert.Empty(JsonNode.Parse(none.NetworkConfig)!["ethernets"]!.AsObject());
        Assert.NotEqual((string?)JsonNode.Parse(after.MetaData)!["instance-id"], (string?)JsonNode.Parse(none.MetaData)!["instance-id"]);
    }
}

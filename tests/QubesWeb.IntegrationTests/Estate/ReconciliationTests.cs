// Inventory and libvirt kept in step by the real console on a private test-driver node.
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.EstateTests;

public sealed class ReconciliationTests
{
    private static async Task SeedAsync(InventoryService inventory)
    {
        await inventory.CreateAsync(new NewQube("fedora-42", QubeClass.TemplateVM, "black", MemoryMiB: 512));
        await inventory.CreateAsync(new NewQube("work", QubeClass.AppVM, "blue", "fedora-42"));
    }

    [Fact]
    public async Task A_qube_of_the_inventory_missing_in_libvirt_is_defined_from_the_inventory()
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        var inventory = host.Get<InventoryService>();
        await SeedAsync(inventory);

        var report = await host.Get<EstateMonitor>().ReconcileAsync();

        Assert.Equal(["fedora-42", "work"], report.Defined.Order());
        Assert.Empty(report.Failed);
        var hypervisor = host.Get<IHypervisor>();
        var work = await inventory.GetAsync("work");
        var domain = hypervisor.GetDomain("work")!;
        Assert.Equal(work.Uuid, domain.Uuid);
        Assert.Equal(RunState.Halted, domain.State);
        Assert.Equal(new QubeMetadata("AppVM", "blue", "fedora-42"), hypervisor.GetMetadata("work"));
        Assert.Equal(new QubeMetadata("TemplateVM", "black", null), hypervisor.GetMetadata("fedora-42"));
        Assert.Equal((await inventory.GetAsync("fedora-42")).Uuid, hypervisor.GetDomain("fedora-42")!.Uuid);
        Assert.Null(hypervisor.GetDomain("dom0"));
        Assert.Equal(RunState.Halted, host.Get<EstateMonitor>().StateOf("work"));
    }

    [Fact]
    public async Task A_second_reconciliation_defines_nothing_more()
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        await SeedAsync(host.Get<InventoryService>());
        await host.Get<EstateMonitor>().ReconcileAsync();

        var again = await host.Get<EstateMonitor>().ReconcileAsync();

        Assert.Empty(again.Defined);
        Assert.Equal(2, again.Domains);
    }

    [Fact]
    public async Task A_domain_libvirt_has_and_the_inventory_does_not_is_listed_unmanaged_and_left_alone()
    {
        var legacyUuid = Guid.NewGuid();
        using var node = new TestNode(new TestNodeDomain("legacy-vm", legacyUuid, TestNode.Running));
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        var estate = host.Get<EstateMonitor>();

        var report = await estate.ReconcileAsync();

        var unmanaged = Assert.Single(report.Unmanaged);
        Assert.Equal(new UnmanagedDomain("legacy-vm", legacyUuid, RunState.Running), unmanaged);
        Assert.Equal([unmanaged], estate.Unmanaged);
        Assert.Equal(RunState.Running, host.Get<IHypervisor>().GetDomain("legacy-vm")!.State);
        Assert.Null(await host.Get<InventoryService>().FindAsync("legacy-vm"));
        Assert.Equal(["dom0"], (await host.Get<InventoryService>().ListAsync()).Select(q => q.Name));
    }

    [Fact]
    public async Task A_domain_undefined_behind_the_consoles_back_is_defined_again_from_the_inventory()
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        var estate = host.Get<EstateMonitor>();
        var hypervisor = host.Get<IHypervisor>();
        await SeedAsync(host.Get<InventoryService>());
        await estate.ReconcileAsync();
        var uuid = hypervisor.GetDomain("work")!.Uuid;
        var undefinedSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        estate.DomainChanged += c => { if (c is { Name: "work", Kind: DomainChangeKind.Undefined }) undefinedSeen.TrySetResult(); };

        hypervisor.Undefine("work");

        await undefinedSeen.Task.WaitAsync(Eventually.DefaultTimeout);
        await Eventually.UntilAsync(estate, () => hypervisor.GetDomain("work") is not null, "work defined again");
        Assert.Equal(uuid, hypervisor.GetDomain("work")!.Uuid);
        Assert.Equal(new QubeMetadata("AppVM", "blue", "fedora-42"), hypervisor.GetMetadata("work"));
        await Eventually.UntilAsync(estate, () => estate.StateOf("work") == RunState.Halted, "work known to the monitor again");
    }

    [Fact]
    public async Task A_domain_started_and_killed_behind_the_consoles_back_shows_each_new_state()
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        var estate = host.Get<EstateMonitor>();
        var hypervisor = host.Get<IHypervisor>();
        await SeedAsync(host.Get<InventoryService>());
        await estate.ReconcileAsync();
        Assert.Equal(RunState.Halted, estate.StateOf("work"));

        hypervisor.Start("work");
        await Eventually.UntilAsync(estate, () => estate.StateOf("work") == RunState.Running, "work seen running");

        hypervisor.Pause("work");
        await Eventually.UntilAsync(estate, () => estate.StateOf("work") == RunState.Paused, "work seen paused");

        hypervisor.Kill("work");
        await Eventually.UntilAsync(estate, () => estate.StateOf("work") == RunState.Halted, "work seen halted");
    }

    /// <summary>Root revisions and private volumes: what outlives a run (snapshots and volatile volumes are made at each start).</summary>
    private static Dictionary<string, DateTime> PersistentImages(string dataDir) =>
        Directory.GetFiles(Path.Combine(dataDir, "pool"), "*.qcow2", SearchOption.AllDirectories)
            .Where(p => Path.GetFileName(p) is var f && (f == "private.qcow2" || f.StartsWith("root.", StringComparison.Ordinal)))
            .ToDictionary(p => p, File.GetLastWriteTimeUtc);

    [Fact]
    public async Task The_demo_started_twice_on_one_folder_keeps_its_inventory_and_images()
    {
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            List<(string Name, Guid Uuid, QubeClass Class)> first;
            Dictionary<string, DateTime> images;
            var host1 = await ConsoleHost.StartAsync(dataDir: dataDir);
            try
            {
                first = (await host1.Get<InventoryService>().ListAsync()).Select(q => (q.Name, q.Uuid, q.Class)).ToList();
                images = PersistentImages(dataDir);
            }
            finally
            {
                await host1.StopAsync();
            }

            await using var host2 = await ConsoleHost.StartAsync(dataDir: dataDir);
            var second = (await host2.Get<InventoryService>().ListAsync()).Select(q => (q.Name, q.Uuid, q.Class)).ToList();

            Assert.Equal(
                ["banking", "debian-13", "default-dvm", "devbox", "dom0", "fedora-42", "mail", "media", "personal", "research",
                 "social", "sys-firewall", "sys-net", "sys-usb", "untrusted", "vault", "work"],
                first.Select(q => q.Name).Order(StringComparer.Ordinal));
            Assert.Equal(first, second);
            Assert.Equal(QubeClass.AdminVM, second.Single(q => q.Name == "dom0").Class);
            Assert.NotEmpty(images);
            var now = PersistentImages(dataDir);
            Assert.Equal(images.OrderBy(kv => kv.Key), now.OrderBy(kv => kv.Key));
            // The demo still boots its autostart qubes on the second start, and lists legacy-vm as unmanaged.
            var estate = host2.Get<EstateMonitor>();
            foreach (var name in new[] { "sys-net", "sys-firewall", "work", "personal", "mail" })
                await Eventually.UntilAsync(estate, () => estate.StateOf(name) == RunState.Running, $"{name} running");
            Assert.Equal("legacy-vm", Assert.Single(estate.Unmanaged).Name);
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task An_unreachable_libvirt_still_starts_the_console_which_says_so_and_refuses_jobs_clearly()
    {
        await using var host = await ConsoleHost.StartAsync(libvirtUri: "test:///nonexistent/node.xml", demo: false);
        var estate = host.Get<EstateMonitor>();
        await host.Get<InventoryService>().CreateAsync(new NewQube("fedora-42", QubeClass.TemplateVM, "black"));

        Assert.False(estate.Connection.IsUp);
        Assert.False(string.IsNullOrWhiteSpace(estate.Connection.Error));
        Assert.Equal("test:///nonexistent/node.xml", estate.Connection.Uri);
        var error = await Assert.ThrowsAsync<HypervisorUnavailableException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Start, "fedora-42"));
        Assert.Contains("libvirt is not reachable", error.Message);
        Assert.Contains("actions are disabled until it is back", error.Message);
        Assert.Empty(await host.Get<JobEngine>().RecentAsync(10));
        await Assert.ThrowsAsync<HypervisorUnavailableException>(() => estate.ReconcileAsync());
    }

    [Fact]
    public async Task The_console_reconnects_by_itself_when_the_libvirt_node_appears_and_then_defines_its_qubes()
    {
        using var node = new TestNode(new TestNodeDomain("legacy-vm", Guid.NewGuid()));
        var missing = Path.Combine(node.Folder, "later", "node.xml");
        var uri = "test://" + missing;
        await using var host = await ConsoleHost.StartAsync(libvirtUri: uri, demo: false);
        var estate = host.Get<EstateMonitor>();
        await host.Get<InventoryService>().CreateAsync(new NewQube("fedora-42", QubeClass.TemplateVM, "black"));
        Assert.False(estate.Connection.IsUp);

        Directory.CreateDirectory(Path.GetDirectoryName(missing)!);
        File.Copy(node.NodeXmlPath, missing);

        await Eventually.UntilAsync(estate, () => estate.Connection.IsUp, "libvirt connection up", TimeSpan.FromSeconds(60));
        Assert.Null(estate.Connection.Error);
        await Eventually.UntilAsync(estate, () => estate.StateOf("fedora-42") == RunState.Halted, "fedora-42 defined after reconnect");
        Assert.Equal("legacy-vm", Assert.Single(estate.Unmanaged).Name);
    }
}

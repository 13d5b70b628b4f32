// A real inventory for one test: a SQLite file in its own temp folder, migrated as the console migrates it.
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;

namespace QubesWeb.IntegrationTests.InventoryTests;

public sealed class TempInventory : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private TempInventory(string folder, ServiceProvider services)
    {
        Folder = folder;
        _services = services;
        Contexts = services.GetRequiredService<IDbContextFactory<InventoryDbContext>>();
        Inventory = services.GetRequiredService<QubesWeb.Data.Qubes.Inventory>();
    }

    public string Folder { get; }
    public string DatabasePath => Path.Combine(Folder, "qubesweb.db");
    public IDbContextFactory<InventoryDbContext> Contexts { get; }
    public QubesWeb.Data.Qubes.Inventory Inventory { get; }

    public static async Task<TempInventory> CreateAsync()
    {
        var folder = Path.Combine(Path.GetTempPath(), "qubesweb-inventory-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var services = new ServiceCollection().AddInventory(Path.Combine(folder, "qubesweb.db")).BuildServiceProvider();
        var inventory = new TempInventory(folder, services);
        await using (var db = await inventory.Contexts.CreateDbContextAsync())
            await db.Database.MigrateAsync();
        await inventory.Inventory.EnsureAdminVmAsync();
        return inventory;
    }

    public async Task<int> QubeCountAsync()
    {
        await using var db = await Contexts.CreateDbContextAsync();
        return await db.Qubes.CountAsync();
    }

    /// <summary>Rows of every table a create writes to, so "nothing written" can be checked whole.</summary>
    public async Task<(int Qubes, int Features, int Volumes)> RowCountsAsync()
    {
        await using var db = await Contexts.CreateDbContextAsync();
        return (await db.Qubes.CountAsync(), await db.Features.CountAsync(), await db.Volumes.CountAsync());
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(Folder, recursive: true); }
        catch (IOException) { }
    }
}
